"""The stock Pusher's executor, made atomic for TF Serving's file-system poller.

The stock executor copies the model file by file into `<base>/<version>/`,
where a poller can see a half-written version. This one lets the stock
executor push into a hidden staging directory beside `<base>` and then
renames the finished version into place (one atomic rename on a POSIX
filesystem), so `<base>/<version>/` appears complete or not at all.
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
        tf.io.gfile.makedirs(base)
        tf.io.gfile.rename(os.path.join(staging_dir(base), version), final)
        pushed.set_string_custom_property("pushed_destination", final)
