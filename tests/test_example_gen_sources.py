"""Both ExampleGen sources give checked records; the TFDS path is exercised with TFDS's mock."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from components import mnist_example_gen, mnist_idx
from components.mnist_idx import MnistDataError
from dcgan_common import features


def mock_split(split: str, *args, **kwargs) -> tf.data.Dataset:
    """TFDS's `_as_dataset` for mnist: a different digit per split (train 3s, test 8s), every
    image filled with its index, so swapped splits or scrambled images fail."""
    digit, count = {"train": (3, 5), "test": (8, 7)}[str(split)]
    return tf.data.Dataset.from_tensor_slices({
        "image": np.arange(count, dtype=np.uint8)[:, None, None, None] * np.ones(
            [count, 28, 28, 1], np.uint8),
        "label": np.full([count], digit, np.int64)})


def test_tfds_source_maps_train_to_train_and_test_to_eval():
    # No internet here: TFDS's mock stands in for the download; the conversion (split mapping,
    # shapes, dtypes, records) is the real code.
    with tfds.testing.mock_data(as_dataset_fn=lambda self, split, *a, **k: mock_split(split)):
        splits = mnist_example_gen.load_mnist("")
    assert sorted(splits) == ["eval", "train"]
    assert splits["train"].labels.tolist() == [3] * 5
    assert splits["eval"].labels.tolist() == [8] * 7
    for data in splits.values():
        assert data.images.shape[1:] == (28, 28) and data.images.dtype == np.uint8
        assert data.labels.dtype == np.int64
        assert [int(image[5, 9]) for image in data.images] == list(range(len(data.images)))
    records = list(mnist_example_gen.to_examples(splits["eval"]))
    assert len(records) == 7
    image = records[2].features.feature[features.IMAGE_KEY].bytes_list.value[0]
    assert image == bytes([2]) * 784


@pytest.mark.parametrize("field, value, message", [
    ("label", np.full([4], 10, np.int64), "label 10 at index 0 is outside 0-9"),
    ("image", np.zeros([4, 28, 27, 1], np.uint8), r"images have shape \(4, 28, 27\)"),
])
def test_tfds_source_is_validated_like_the_idx_files(field, value, message):
    def bad_split(self, split, *args, **kwargs):
        good = {"image": np.zeros([4, 28, 28, 1], np.uint8), "label": np.zeros([4], np.int64)}
        return tf.data.Dataset.from_tensor_slices({**good, field: value})

    with tfds.testing.mock_data(as_dataset_fn=bad_split):
        with pytest.raises(MnistDataError, match=f"tensorflow-datasets mnist split 'train': "
                                                 f"{message}"):
            mnist_example_gen.load_from_tfds("train")


def test_a_failed_download_says_how_to_pass_the_idx_files(monkeypatch):
    import requests
    import tensorflow_datasets

    def offline(*args, **kwargs):
        raise requests.exceptions.ConnectionError(
            "HTTPSConnectionPool(host='storage.googleapis.com', port=443): Max retries exceeded")

    monkeypatch.setattr(tensorflow_datasets, "load", offline)
    with pytest.raises(MnistDataError) as raised:
        mnist_example_gen.load_mnist("")
    message = str(raised.value)
    assert message.startswith("downloading MNIST with tensorflow-datasets failed "
                              "(ConnectionError: HTTPSConnectionPool")
    assert "--mnist-dir DIR" in message and "MNIST_DIR=DIR" in message
    assert "\n" not in message


def test_idx_source_records_round_trip(mnist_slice):
    data = mnist_idx.load_split(mnist_slice, "eval")
    records = list(mnist_example_gen.to_examples(data))
    assert len(records) == 500
    decoded = np.frombuffer(records[10].features.feature[features.IMAGE_KEY].bytes_list.value[0],
                            np.uint8).reshape(28, 28)
    np.testing.assert_array_equal(decoded, data.images[10])
    assert records[10].features.feature[features.LABEL_KEY].int64_list.value[0] == data.labels[10]
