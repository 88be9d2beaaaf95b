"""A process that publishes a generator version on s3:// while a poller lists the destination.

    python tests/s3_publish_worker.py S3_BASE LOCAL_TMP   (S3 endpoint and keys from the env)

Prints one JSON line: every listing's view of the version (files present, saved_model.pb
present), the complete file list, and what the stand-in server's loader served afterwards.
It touches s3:// through tensorflow-io, so it ends with dcgan_kfp.entrypoint.exit_now.
"""

import json
import os
import sys
import threading

import boto3
import tensorflow as tf

from components import atomic_pusher
from dcgan_kfp import entrypoint

from serving.model_store import ModelStore
from trainer.export import export_generator
from trainer.models import build_generator
from settings import trainer_config

VERSION = "1700000000"


def files_under(path):
    return sorted(os.path.relpath(os.path.join(root, name), path)
                  for root, _, names in tf.io.gfile.walk(path) for name in names)


def main(base, local_tmp):
    entrypoint.register_object_stores()
    exported = os.path.join(local_tmp, "exported")
    # The specification's generator: megabytes of variables, so copies take a while.
    export_generator(build_generator(trainer_config(mixed_precision="float32")), exported)
    staged = os.path.join(atomic_pusher.staging_dir(base), VERSION)
    for name in files_under(exported):
        tf.io.gfile.makedirs(os.path.dirname(os.path.join(staged, name)))
        tf.io.gfile.copy(os.path.join(exported, name), os.path.join(staged, name))
    views, done = [], threading.Event()

    bucket, prefix = base[len("s3://"):].split("/", 1)
    prefix = f"{prefix}/{VERSION}/"
    client = boto3.client("s3")  # One listing per look, and no GIL held while it waits.

    def poll():  # What a poller sees of the version.
        while not done.is_set():
            listing = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
            files = sorted(item["Key"][len(prefix):] for item in listing.get("Contents", []))
            if files:
                views.append(files)

    poller = threading.Thread(target=poll)
    poller.start()
    atomic_pusher.publish(staged, os.path.join(base, VERSION))
    done.set()
    poller.join()
    store = ModelStore("dcgan_mnist", base)
    store.refresh()
    images = store.current.signatures["serving_default"](z=tf.zeros([2, 100]))["images"]
    print(json.dumps({"views": views, "files": files_under(exported),
                      "published": files_under(os.path.join(base, VERSION)),
                      "staging_left": tf.io.gfile.exists(staged),
                      "served_version": store.current.version,
                      "served_shape": list(images.shape)}))


if __name__ == "__main__":
    main(*sys.argv[1:])
    entrypoint.exit_now(0)
