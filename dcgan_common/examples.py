"""Reading Transform's output: the transformed examples as a dataset or as arrays."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from dcgan_common import features

PARSE_BATCH = 1024


def transformed_examples(file_patterns: list[str]) -> tf.data.Dataset:
    """(image float32 [28, 28, 1] in [-1, 1], label int64) pairs, parsed in vectorized batches."""
    spec = features.transformed_feature_spec()
    files = tf.data.Dataset.list_files(file_patterns, shuffle=False)
    records = tf.data.TFRecordDataset(files, compression_type="GZIP",
                                      num_parallel_reads=tf.data.AUTOTUNE)

    def parse(serialized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        parsed = tf.io.parse_example(serialized, spec)
        images = tf.reshape(parsed[features.IMAGE_XF], (-1, *features.IMAGE_SHAPE))
        return images, parsed[features.LABEL_XF]

    return records.batch(PARSE_BATCH).map(parse, num_parallel_calls=tf.data.AUTOTUNE).unbatch()


def load_arrays(file_patterns: list[str], limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first `limit` (default: all) transformed examples as numpy arrays."""
    dataset = transformed_examples(file_patterns)
    if limit is not None:
        dataset = dataset.take(limit)
    images, labels = next(iter(dataset.batch(1 << 20)))
    return images.numpy(), labels.numpy()
