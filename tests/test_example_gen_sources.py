"""Both ExampleGen sources give the same records; the TFDS path is exercised with TFDS's mock."""

import numpy as np
import tensorflow_datasets as tfds

from components import mnist_example_gen, mnist_idx
from trainer import features


def test_tfds_source_converts_to_the_same_arrays_and_records():
    # No internet here: tfds.testing.mock_data stands in for the download, the
    # conversion below (split mapping, shapes, dtypes, records) is the real code.
    with tfds.testing.mock_data(num_examples=7):
        splits = mnist_example_gen.load_mnist("")
        reference = next(iter(tfds.as_numpy(
            tfds.load("mnist", split="test", as_supervised=True).batch(100))))
    assert sorted(splits) == ["eval", "train"]
    evaluation = splits["eval"]
    assert evaluation.images.shape == (7, 28, 28) and evaluation.images.dtype == np.uint8
    assert evaluation.labels.dtype == np.int64
    np.testing.assert_array_equal(evaluation.images, reference[0][..., 0])
    np.testing.assert_array_equal(evaluation.labels, reference[1])
    records = list(mnist_example_gen.to_examples(evaluation))
    assert len(records) == 7
    image = records[2].features.feature[features.IMAGE_KEY].bytes_list.value[0]
    assert image == evaluation.images[2].tobytes() and len(image) == 784


def test_idx_source_records_round_trip(mnist_slice):
    data = mnist_idx.load_split(mnist_slice, "eval")
    records = list(mnist_example_gen.to_examples(data))
    assert len(records) == 500
    decoded = np.frombuffer(records[10].features.feature[features.IMAGE_KEY].bytes_list.value[0],
                            np.uint8).reshape(28, 28)
    np.testing.assert_array_equal(decoded, data.images[10])
    assert records[10].features.feature[features.LABEL_KEY].int64_list.value[0] == data.labels[10]
