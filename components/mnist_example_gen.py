"""MnistExampleGen: MNIST (or Stacked MNIST) as tf.Example records, splits `train` and `eval`.

A Python-function component: it needs no custom driver (FileBasedExampleGen's
driver does not run on the open-source Kubeflow Pipelines backend), and the
same code runs under LocalDagRunner and KubeflowV2DagRunner.
"""

import logging
import os
from typing import Iterable

import tensorflow as tf
from tfx.dsl.component.experimental.annotations import OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts

from components import mnist_idx
from components.mnist_idx import MnistDataError
from dcgan_common.datasets import dataset, stack
from dcgan_common.features import IMAGE_KEY, LABEL_KEY

# Official training images -> train, official test images -> eval.
TFDS_SPLITS = {"train": "train", "eval": "test"}
RECORD_FILE = "data_tfrecord-00000-of-00001.gz"
MAX_SPLIT_SIZE = 1 << 20  # Larger than any MNIST split: one batch holds it all.


def load_from_tfds(split: str) -> mnist_idx.MnistSplit:
    """The same arrays as the IDX files, from tensorflow-datasets (downloads once), checked
    as the IDX files are."""
    import tensorflow_datasets as tfds  # Imported lazily: only the online path needs it.

    source = f"tensorflow-datasets mnist split {TFDS_SPLITS[split]!r}"
    try:
        dataset = tfds.load("mnist", split=TFDS_SPLITS[split], as_supervised=True)
    except Exception as err:  # pylint: disable=broad-except  # requests, OSError, tfds errors.
        raise MnistDataError(
            f"downloading MNIST with tensorflow-datasets failed ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}); without internet, pass the four "
            "IDX files: --mnist-dir DIR (dcgan-pipeline, dcgan-kfp) or MNIST_DIR=DIR "
            "(make run)") from err
    images, labels = next(iter(tfds.as_numpy(dataset.batch(MAX_SPLIT_SIZE))))
    if images.ndim != 4 or images.shape[-1] != 1:
        raise MnistDataError(f"{source}: images have shape {images.shape}, expected "
                             "[n, 28, 28, 1]")
    return mnist_idx.check_split(images[..., 0], labels, source)


def load_mnist(mnist_dir: str) -> dict[str, mnist_idx.MnistSplit]:
    """Every split, fully read and validated, from IDX files or (when empty) TFDS."""
    if mnist_dir:
        return {split: mnist_idx.load_split(mnist_dir, split) for split in mnist_idx.SPLIT_FILES}
    return {split: load_from_tfds(split) for split in TFDS_SPLITS}


def build_dataset(digits: dict[str, mnist_idx.MnistSplit], name: str, seed: int
                  ) -> dict[str, mnist_idx.MnistSplit]:
    """The dataset's splits from the MNIST digits: the digits themselves, or (Stacked MNIST)
    each split's examples stacked from that split's digits, deterministically from `seed`."""
    spec = dataset(name)
    if spec.channels == 1:
        return digits
    return {split: mnist_idx.MnistSplit(*stack(data.images, data.labels, len(data.images),
                                               spec.channels, seed=[seed, index]))
            for index, (split, data) in enumerate(digits.items())}


def to_examples(data: mnist_idx.MnistSplit) -> Iterable[tf.train.Example]:
    for image, label in zip(data.images, data.labels):
        yield tf.train.Example(features=tf.train.Features(feature={
            IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[image.tobytes()])),
            LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
        }))


def write_split(data: mnist_idx.MnistSplit, split_dir: str) -> None:
    tf.io.gfile.makedirs(split_dir)
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(os.path.join(split_dir, RECORD_FILE), options) as writer:
        for example in to_examples(data):
            writer.write(example.SerializeToString())


@component
def MnistExampleGen(  # pylint: disable=invalid-name
    examples: OutputArtifact[standard_artifacts.Examples],
    mnist_dir: Parameter[str] = "",
    dataset_name: Parameter[str] = "mnist",
    seed: Parameter[int] = 0,
) -> None:
    """Emits MNIST as gzipped tf.Example TFRecords, like the stock ExampleGens.

    Args:
      examples: the output artifact, with splits `train` and `eval`.
      mnist_dir: a directory (local or any tf.io.gfile filesystem) holding the
        four canonical IDX files, gzip-compressed or not. Empty: download
        `mnist` with tensorflow-datasets.
      dataset_name: `mnist`, or `stacked_mnist` (dcgan_common/datasets.py).
      seed: which digits are stacked (Stacked MNIST only).
    """
    # Raises MnistDataError (or ValueError) before anything is written.
    splits = build_dataset(load_mnist(mnist_dir), dataset_name, seed)
    examples.split_names = artifact_utils.encode_split_names(list(splits))
    for split, data in splits.items():
        logging.info("MnistExampleGen: writing %d %s %s examples from %s", len(data.labels),
                     dataset_name, split, mnist_dir or "tensorflow-datasets")
        write_split(data, artifact_utils.get_split_uri([examples], split))
    examples.span = 0
    examples.set_string_custom_property("payload_format", "FORMAT_TF_EXAMPLE")
