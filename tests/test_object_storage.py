"""s3:// pipeline roots and push destinations, against a real S3-compatible server on loopback
(moto's server mode), with the endpoint and keys from the standard variables.

Everything that touches s3:// through tensorflow-io runs in a child process: tensorflow-io
0.37.1 aborts such a process at exit (dcgan_kfp/entrypoint.py), and this pytest process must
end with its own status.
"""

import json
import os
import socket
import subprocess
import sys
import time

import boto3
import numpy as np
import pytest
import tensorflow as tf

HERE = os.path.dirname(os.path.abspath(__file__))
BUCKET = "dcgan"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                               "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_REGION": "us-east-1",
           # tensorflow-io's S3 filesystem:
           "S3_ENDPOINT": endpoint, "S3_USE_HTTPS": "0", "S3_VERIFY_SSL": "0",
           # boto3 (Beam's S3 filesystem):
           "AWS_ENDPOINT_URL": endpoint}
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    for _ in range(100):
        try:
            client.create_bucket(Bucket=BUCKET)
            break
        except Exception:  # pylint: disable=broad-except  # Not listening yet.
            time.sleep(0.2)
    else:
        pytest.fail("moto's S3 server did not start")
    yield {"env": env, "client": client}
    server.terminate()
    server.wait(timeout=30)
    log.close()


def keys(client, prefix: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def test_a_process_that_touched_s3_ends_with_its_own_status(s3):
    touch = ("import tensorflow as tf; from dcgan_kfp import entrypoint; "
             "entrypoint.register_object_stores(); tf.io.gfile.listdir('s3://dcgan/'); ")
    for status in (0, 3):
        done = subprocess.run([sys.executable, "-c", touch + f"entrypoint.exit_now({status})"],
                              env=s3["env"], capture_output=True, timeout=300, check=False)
        assert done.returncode == status, done.stderr[-2000:]


def test_a_poller_never_sees_a_version_whose_load_would_fail_on_a_partial_file(s3, tmp_path):
    base = f"s3://{BUCKET}/publish/serving/dcgan_mnist"
    done = subprocess.run([sys.executable, os.path.join(HERE, "s3_publish_worker.py"), base,
                           str(tmp_path)], env=s3["env"], capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "saved_model.pb" in result["files"] and len(result["files"]) > 3
    assert result["views"], "the poller never saw the version"
    for view in result["views"]:
        if "saved_model.pb" in view:  # A loader would go on: everything else must be there.
            assert view == result["files"], view
    assert result["published"] == result["files"]
    assert not result["staging_left"]
    assert result["served_version"] == 1700000000 and result["served_shape"] == [2, 28, 28, 1]


def test_local_run_with_an_s3_pipeline_root_pushes_a_version_there(s3, tmp_path):
    root = f"s3://{BUCKET}/kfp"
    done = subprocess.run(
        [sys.executable, "-m", "dcgan_kfp.cli", "local-run", "--pipeline-root", root,
         "--preset", "smoke", "--mnist-dir", os.path.join(HERE, "data", "mnist_slice"),
         "--log-dir", str(tmp_path / "logs")],
        env=s3["env"], capture_output=True, text=True, timeout=1200, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    pushed = keys(s3["client"], "kfp/serving/dcgan_mnist/")
    (version,) = {key.split("/")[3] for key in pushed}
    assert version.isdigit()
    assert any(key.startswith("kfp/pipeline_root/") for key in keys(s3["client"], "kfp/"))
    assert not keys(s3["client"], "kfp/serving/.staging-dcgan_mnist/")
    local = tmp_path / version
    for key in pushed:
        target = local / key[len(f"kfp/serving/dcgan_mnist/{version}/"):]
        os.makedirs(target.parent, exist_ok=True)
        s3["client"].download_file(BUCKET, key, str(target))
    generator = tf.saved_model.load(str(local))
    images = generator.signatures["serving_default"](z=tf.zeros([2, 100]))["images"].numpy()
    assert images.shape == (2, 28, 28, 1) and images.dtype == np.uint8


def test_the_pusher_publishes_a_model_once_on_s3_and_clears_staging_there(s3, tmp_path):
    base = f"s3://{BUCKET}/once/serving/dcgan_mnist"
    done = subprocess.run([sys.executable, os.path.join(HERE, "s3_push_worker.py"), base,
                           str(tmp_path)], env=s3["env"], capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(result["versions"]) == 1
    assert result["recorded"] == [str(result["versions"][0])] * 2
    assert result["leftover_gone"]
