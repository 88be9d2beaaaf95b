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
"""

import os
from typing import Any, Dict, List

from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

import tensorflow as tf


def staging_dir(base_directory: str) -> str:
    """`<serving>/.staging-<model name>`: outside the directory TF Serving watches."""
    parent, name = os.path.split(base_directory.rstrip("/"))
    return os.path.join(parent, f".staging-{name}")


class Executor(pusher_executor.Executor):
    """Pushes like the stock Pusher, then publishes the version with one rename."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
        key = standard_component_specs.PUSH_DESTINATION_KEY
        destination = proto_utils.json_to_proto(exec_properties[key], pusher_pb2.PushDestination())
        base = destination.filesystem.base_directory
        destination.filesystem.base_directory = staging_dir(base)
        super().Do(input_dict, output_dict,
                   {**exec_properties, key: proto_utils.proto_to_json(destination)})
        pushed = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not pushed.get_int_custom_property("pushed"):
            return
        version = pushed.get_string_custom_property("pushed_version")
        final = os.path.join(base, version)
        publish(os.path.join(staging_dir(base), version), final)
        pushed.set_string_custom_property("pushed_destination", final)


SAVED_MODEL_FILE = "saved_model.pb"  # What a SavedModel loader reads first.


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
