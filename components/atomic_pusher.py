"""The stock Pusher's executor, publishing a version only once it is complete.

The stock executor copies the model file by file into `<base>/<version>/`, where a poller can
see a half-written version. This one lets the stock executor push into a hidden staging
directory beside `<base>`, then publishes the finished version:

- on a POSIX filesystem, with one rename: `<base>/<version>/` appears complete or not at all;
- on an object store (gs://, s3://) there is no atomic rename (tf.io.gfile copies and deletes
  object by object, in listing order), and TF Serving's poller takes any numeric child of
  `<base>` as a version as soon as one object exists under it
  (tensorflow_serving/sources/storage_path/file_system_storage_path_source.cc). So the files
  are copied with `saved_model.pb` last: a load that finds `saved_model.pb` finds every other
  file complete, and a load tried earlier fails on the missing `saved_model.pb` alone, which TF
  Serving retries (`--max_num_load_retries`, default 5, every `--load_retry_interval_micros`,
  default one minute; model_servers/server.h). `dcgan-serve` waits for `saved_model.pb`.

Exactly once: every published version carries a record of the model it holds (a digest of the
model's files, dcgan_common/layout.PUSH_RECORD_FILE). A Pusher that finds the model it is asked
to push already published (a retry after a crash between the publication and the metadata
store's record of it, or a rerun of the same model) records that version and publishes none.
What a killed Pusher left in staging is removed by the next one.

Fault injection: with DCGAN_PUSHER_FAULT=staged (the copy into staging done, nothing published)
or =published (the version renamed into place, nothing recorded yet), the Pusher kills its own
process with SIGKILL there; tests/test_faults.py crashes real runs at those points.
"""

import hashlib
import json
import logging
import os
import signal
from typing import Any, Dict, List

from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

import tensorflow as tf

from dcgan_common.layout import PUSH_RECORD_FILE, SAVED_MODEL_FILE, available_versions


def staging_dir(base_directory: str) -> str:
    """`<serving>/.staging-<model name>`: outside the directory TF Serving watches."""
    parent, name = os.path.split(base_directory.rstrip("/"))
    return os.path.join(parent, f".staging-{name}")


def model_digest(model_path: str) -> str:
    """sha256 over the model's files (relative path and content, in path order)."""
    digest = hashlib.sha256()
    files = sorted(os.path.relpath(os.path.join(root, name), model_path)
                   for root, _, names in tf.io.gfile.walk(model_path) for name in names)
    for relative in files:
        digest.update(relative.encode() + b"\0")
        with tf.io.gfile.GFile(os.path.join(model_path, relative), "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


def published_version_of(base: str, digest: str) -> str | None:
    """The published version that holds the model with `digest`, if any."""
    for version in available_versions(base):
        record = os.path.join(base, str(version), PUSH_RECORD_FILE)
        if tf.io.gfile.exists(record):
            with tf.io.gfile.GFile(record) as f:
                if json.load(f).get("model_digest") == digest:
                    return str(version)
    return None


FAULT_ENV = "DCGAN_PUSHER_FAULT"


def _fault_point(name: str) -> None:
    """Dies here, as a crash would, when FAULT_ENV names this point."""
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


class Executor(pusher_executor.Executor):
    """Pushes like the stock Pusher, then publishes the version with one rename; a model that
    is already published is recorded, not published again."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
        key = standard_component_specs.PUSH_DESTINATION_KEY
        destination = proto_utils.json_to_proto(exec_properties[key], pusher_pb2.PushDestination())
        base = destination.filesystem.base_directory
        staging = staging_dir(base)
        for leftover in (tf.io.gfile.listdir(staging) if tf.io.gfile.isdir(staging) else []):
            # What a killed Pusher left: never served, removed.
            path = os.path.join(staging, leftover.rstrip("/"))
            logging.warning("removing %s, left by a Pusher that did not finish", path)
            tf.io.gfile.rmtree(path)
        pushed = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if self.CheckBlessing(input_dict):
            model_path = self.GetModelPath(input_dict)
            digest = model_digest(model_path)
            version = published_version_of(base, digest)
            if version is not None:
                logging.info("this model is already published as version %s; recording it, "
                             "publishing nothing", version)
                io_utils.copy_dir(model_path, pushed.uri)
                self._MarkPushed(pushed, pushed_destination=os.path.join(base, version),
                                 pushed_version=version)
                return
        destination.filesystem.base_directory = staging
        super().Do(input_dict, output_dict,
                   {**exec_properties, key: proto_utils.proto_to_json(destination)})
        if not pushed.get_int_custom_property("pushed"):
            return
        version = pushed.get_string_custom_property("pushed_version")
        final = os.path.join(base, version)
        staged = os.path.join(staging, version)
        record = os.path.join(staged, PUSH_RECORD_FILE)
        tf.io.gfile.makedirs(os.path.dirname(record))
        with tf.io.gfile.GFile(record, "w") as f:
            json.dump({"model_digest": digest, "model": model_path}, f)
        _fault_point("staged")
        publish(staged, final)
        _fault_point("published")
        pushed.set_string_custom_property("pushed_destination", final)




def is_object_store(path: str) -> bool:
    return "://" in path


def publish(staged: str, final: str) -> None:
    """Moves a complete version from `staged` to `final` (see the module docstring)."""
    tf.io.gfile.makedirs(os.path.dirname(final))
    if not is_object_store(final):
        tf.io.gfile.rename(staged, final)
        return
    files = [os.path.join(root, name) for root, _, names in tf.io.gfile.walk(staged)
             for name in names]
    for path in sorted(files, key=lambda p: (os.path.basename(p) == SAVED_MODEL_FILE, p)):
        tf.io.gfile.copy(path, final + path[len(staged):], overwrite=True)
    tf.io.gfile.rmtree(staged)
