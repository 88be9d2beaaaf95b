"""The Pusher publishes each blessed model exactly once: a retry (after a crash between the
publication and the metadata store's record of it) or a rerun of the same model records the
version already published; what a killed Pusher left in staging is removed."""

import json
import os
import time

import keras

from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import path_utils, proto_utils

from components import atomic_pusher
from dcgan_common.layout import PUSH_RECORD_FILE, available_versions
from settings import trainer_config
from trainer.export import export_generator
from trainer.models import build_generator


def exported_model(directory, seed: int) -> standard_artifacts.Model:
    model = standard_artifacts.Model()
    model.uri = str(directory)
    config = trainer_config(generator_filters=(16, 8), mixed_precision="float32", seed=seed)
    keras.utils.set_random_seed(seed)
    export_generator(build_generator(config), path_utils.serving_model_path(model.uri))
    return model


def push(model, base, output_dir, blessed: int = 1) -> standard_artifacts.PushedModel:
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(output_dir / "blessing")
    blessing.set_int_custom_property("blessed", blessed)
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(output_dir / "pushed")
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(base)))
    atomic_pusher.Executor().Do(
        {"model": [model], "model_blessing": [blessing]}, {"pushed_model": [pushed]},
        {"push_destination": proto_utils.proto_to_json(destination)})
    return pushed


def test_pushing_the_same_model_twice_publishes_one_version(tmp_path):
    base = tmp_path / "serving" / "dcgan_mnist"
    model = exported_model(tmp_path / "model", seed=0)
    first = push(model, base, tmp_path / "first")
    time.sleep(1.1)  # Versions are Unix seconds: the stock Pusher would now publish another.
    second = push(model, base, tmp_path / "second")  # The retried (or rerun) Pusher.
    assert len(available_versions(str(base))) == 1
    version = first.get_string_custom_property("pushed_version")
    assert second.get_int_custom_property("pushed") == 1
    assert second.get_string_custom_property("pushed_version") == version
    assert second.get_string_custom_property("pushed_destination") == str(base / version)
    record = json.loads((base / version / PUSH_RECORD_FILE).read_text())
    assert record["model_digest"] == atomic_pusher.model_digest(
        path_utils.serving_model_path(model.uri))


def test_another_model_is_published_as_a_new_version(tmp_path):
    base = tmp_path / "serving" / "dcgan_mnist"
    push(exported_model(tmp_path / "a", seed=0), base, tmp_path / "first")
    other = exported_model(tmp_path / "b", seed=1)
    first_versions = available_versions(str(base))
    time.sleep(1.1)  # Versions are Unix seconds.
    push(other, base, tmp_path / "second")
    assert len(available_versions(str(base))) == 2 and available_versions(str(base))[0] in \
        first_versions


def test_an_unblessed_model_is_neither_published_nor_recorded_as_pushed(tmp_path):
    base = tmp_path / "serving" / "dcgan_mnist"
    model = exported_model(tmp_path / "model", seed=0)
    push(model, base, tmp_path / "first")
    pushed = push(model, base, tmp_path / "second", blessed=0)
    assert pushed.get_int_custom_property("pushed") == 0
    assert len(available_versions(str(base))) == 1


def test_staging_left_by_a_killed_pusher_is_removed_by_the_next(tmp_path):
    base = tmp_path / "serving" / "dcgan_mnist"
    leftover = tmp_path / "serving" / ".staging-dcgan_mnist" / "1700000000" / "variables"
    leftover.mkdir(parents=True)
    (leftover / "variables.data-00000-of-00001").write_bytes(b"half")
    push(exported_model(tmp_path / "model", seed=0), base, tmp_path / "first")
    assert os.listdir(atomic_pusher.staging_dir(str(base))) == []  # The leftover is gone.
    assert len(available_versions(str(base))) == 1
