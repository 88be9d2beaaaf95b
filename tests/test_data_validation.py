"""Bad data stops the run: at ExampleGen (bad files) or at the validation gate (anomalies)."""

import os

import pytest
import tensorflow as tf
from tfx import v1 as tfx

from components.data_validation_gate import DataAnomaliesError
from components.mnist_idx import MnistDataError
from pipeline import local_runner
from pipeline import pipeline as pipeline_def
from dcgan_common import features
from pipeline.metadata import State, executions_by_node, live_artifacts
from dcgan_common.config import with_dataset
from pipeline_helpers import pushed_versions, smoke_config


def example(image: bytes | None, label: int | list[int]) -> bytes:
    labels = label if isinstance(label, list) else [label]
    feature = {features.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=labels))}
    if image is not None:
        feature[features.IMAGE_KEY] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[image]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_records(directory, records):
    os.makedirs(directory)
    with tf.io.TFRecordWriter(os.path.join(directory, "data.tfrecord")) as writer:
        for record in records:
            writer.write(record)


def run_with_records(tmp_path, train: list[bytes], evaluation: list[bytes],
                     dataset: str = "mnist"):
    """The pipeline with ImportExampleGen over these records in place of MnistExampleGen."""
    write_records(tmp_path / "data" / "train", train)
    write_records(tmp_path / "data" / "eval", evaluation)
    config = with_dataset(smoke_config("", tmp_path / "out"), dataset)
    import_gen = tfx.components.ImportExampleGen(
        input_base=str(tmp_path / "data"),
        input_config=tfx.proto.Input(splits=[
            tfx.proto.Input.Split(name="train", pattern="train/*"),
            tfx.proto.Input.Split(name="eval", pattern="eval/*")]))
    with pytest.raises(DataAnomaliesError) as raised:
        tfx.orchestration.LocalDagRunner().run(pipeline_def.create_pipeline(
            config, tfx.orchestration.metadata.sqlite_metadata_connection_config(
                pipeline_def.metadata_path(config)), example_gen=import_gen))
    executions = executions_by_node(config)
    assert executions["ExampleValidator"][0].last_known_state == State.COMPLETE
    assert executions["DataValidationGate"][0].last_known_state == State.FAILED
    for node in ("Transform", "Trainer", "Pusher"):
        assert not executions.get(node), node
    assert not live_artifacts(config, "Model") and pushed_versions(config) == []
    return str(raised.value)


GOOD = [example(bytes(784), label % 10) for label in range(40)]


def test_anomalies_stop_the_run_before_transform_and_trainer(tmp_path):
    message = run_with_records(tmp_path, GOOD + [example(bytes(784), 11)],
                               GOOD + [example(None, 3)])
    assert "split 'train', feature 'label'" in message and "Out-of-range" in message
    assert "split 'eval', feature 'image'" in message


def test_every_field_is_bounded_image_bytes_and_one_label(tmp_path):
    """783- and 1,568-byte images and a two-valued label: each named before Transform."""
    message = run_with_records(tmp_path, GOOD + [example(bytes(783), 1)],
                               GOOD + [example(bytes(1568), 2), example(bytes(784), [3, 4])])
    lines = message.splitlines()
    assert any("split 'train', feature 'image': mnist: image must be exactly 784 bytes" in line
               for line in lines), message
    assert any("split 'eval', feature 'image': mnist: image must be exactly 784 bytes" in line
               for line in lines), message
    assert any("split 'eval', feature 'label'" in line and "shape" in line for line in lines), \
        message
    assert not any("split 'train', feature 'label'" in line for line in lines), message


STACKED = [example(bytes(3 * 784), label) for label in range(0, 1000, 25)]


@pytest.mark.parametrize("dataset, train, message", [
    ("stacked_mnist", GOOD, "stacked_mnist: image must be exactly 2352 bytes"),
    ("mnist", STACKED, "mnist: image must be exactly 784 bytes"),
])
def test_single_digits_in_a_stacked_run_or_the_reverse_are_refused_by_name(
        tmp_path, dataset, train, message):
    text = run_with_records(tmp_path, train, train, dataset)
    assert f"split 'train', feature 'image': {message}" in text, text
    if dataset == "mnist":  # Stacked labels (0-999) are out of MNIST's range too.
        assert "split 'train', feature 'label'" in text and "Out-of-range" in text


def test_a_bad_idx_file_fails_example_gen_and_publishes_nothing(tmp_path, mnist_slice):
    bad_dir = tmp_path / "mnist"
    bad_dir.mkdir()
    for name in os.listdir(mnist_slice):
        data = open(os.path.join(mnist_slice, name), "rb").read()
        if name.startswith("t10k-images"):
            data = data[: len(data) // 2]  # A truncated download.
        (bad_dir / name).write_bytes(data)
    config = smoke_config(str(bad_dir), tmp_path / "out")
    with pytest.raises(MnistDataError, match=r"t10k-images-idx3-ubyte.gz: truncated"):
        local_runner.run(config)
    executions = executions_by_node(config)
    assert [e.last_known_state for e in executions["MnistExampleGen"]] == [State.FAILED]
    assert live_artifacts(config, "Examples") == []
    assert set(executions) <= {"MnistExampleGen", "ImportSchemaGen"}
