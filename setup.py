"""Packaging for the MNIST DCGAN TFX pipeline.

Direct dependencies only, as compatible ranges; every install goes through the
pinned lock file `requirements.lock` (see the Makefile).
"""

from setuptools import find_packages, setup

setup(
    name="tfx-dcgan-mnist",
    version="0.1.0",
    description="A TFX pipeline that trains a DCGAN on MNIST and ships it to TF Serving.",
    python_requires=">=3.10,<3.11",
    packages=find_packages(include=["dcgan_common", "pipeline", "components", "trainer",
                                    "serving", "dcgan_kfp"]),
    package_data={"components": ["schema/*/*.pbtxt"], "serving": ["config/*"]},
    install_requires=[
        "tensorflow>=2.16,<2.17",
        # Keras >= 3.5 breaks custom training loops under MirroredStrategy on TF 2.16.
        "keras>=3.4.1,<3.5",
        "tfx[kfp]>=1.16,<1.17",
        # Beam >= 2.70 makes dill optional and tfx-bsl fails to import; the `dill`
        # extra installs it for the 2.6x releases that already made it optional.
        # `aws`: Beam's own S3 filesystem (StatisticsGen, Transform) for s3:// pipeline roots.
        "apache-beam[gcp,dill,aws]>=2.60,<2.70",
        # s3:// (and hdfs://) for tf.io.gfile; 0.37.1 is the last release for TF 2.16.
        "tensorflow-io==0.37.1",
        "tensorflow-datasets>=4.9,<5",
        "tensorflow-serving-api>=2.16,<2.17",
        "kfp>=2.5,<3",
        "numpy>=1.26,<2",
        "scipy>=1.11,<1.13",
        "pillow>=10,<13",
        "grpcio>=1.60,<2",
    ],
    extras_require={"test": ["pytest>=8,<9", "pytest-timeout>=2.3,<3",
                             "moto[server]>=5,<6",  # An S3-compatible server on loopback.
                             "kubernetes-validate>=1.30,<2",  # Kubernetes' own schemas.
                             "hypothesis>=6.100,<7"]},  # Fuzzing the serving front ends.
    entry_points={
        "console_scripts": [
            "dcgan-pipeline=pipeline.console:main",
            "dcgan-generate=serving.cli:generate",
            "dcgan-serve=serving.cli:serve",
            "dcgan-kfp=dcgan_kfp.console:main",
        ],
    },
)
