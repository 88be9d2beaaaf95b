"""Reading Transform's output: the transformed examples as a dataset or as arrays."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from dcgan_common import features

PARSE_BATCH = 1024


def image_channels(file_patterns: list[str]) -> int:
    """Channels per image in Transform's output, read from its first record: 1 for MNIST, 3
    for Stacked MNIST. The data says it; nothing downstream is configured with it."""
    files = sorted(path for pattern in file_patterns for path in tf.io.gfile.glob(pattern))
    if not files:
        raise ValueError(f"no transformed examples match {file_patterns}")
    for record in tf.data.TFRecordDataset(files[:1], compression_type="GZIP").take(1):
        example = tf.train.Example.FromString(record.numpy())
        values = len(example.features.feature[features.IMAGE_XF].float_list.value)
        if not values or values % features.IMAGE_PIXELS:
            raise ValueError(f"{files[0]}: {features.IMAGE_XF} holds {values} values, not "
                             f"28x28 pixels times a channel count")
        return values // features.IMAGE_PIXELS
    raise ValueError(f"{files[0]}: no examples")


def transformed_examples(file_patterns: list[str]) -> tf.data.Dataset:
    """(image float32 [28, 28, C] in [-1, 1], label int64) pairs, parsed in vectorized batches;
    C from the data (image_channels)."""
    channels = image_channels(file_patterns)
    spec = features.transformed_feature_spec(channels)
    files = tf.data.Dataset.list_files(file_patterns, shuffle=False)
    records = tf.data.TFRecordDataset(files, compression_type="GZIP",
                                      num_parallel_reads=tf.data.AUTOTUNE)

    def parse(serialized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        parsed = tf.io.parse_example(serialized, spec)
        images = tf.reshape(parsed[features.IMAGE_XF],
                            (-1, features.IMAGE_SIZE, features.IMAGE_SIZE, channels))
        return images, parsed[features.LABEL_XF]

    return records.batch(PARSE_BATCH).map(parse, num_parallel_calls=tf.data.AUTOTUNE).unbatch()


def load_arrays(file_patterns: list[str], limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first `limit` (default: all) transformed examples as numpy arrays."""
    dataset = transformed_examples(file_patterns)
    if limit is not None:
        dataset = dataset.take(limit)
    images, labels = next(iter(dataset.batch(1 << 20)))
    return images.numpy(), labels.numpy()


def single_digits(examples: tf.data.Dataset) -> tf.data.Dataset:
    """(image [28, 28, C], label) pairs -> C pairs (one channel [28, 28, 1], its digit): what
    the MNIST classifier learns and measures, whatever the dataset. Identity for MNIST."""
    def split(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        channels = tf.shape(image)[-1]
        place = tf.cast(features.NUM_CLASSES, tf.int64) ** tf.range(
            tf.cast(channels, tf.int64) - 1, -1, -1, dtype=tf.int64)
        digits = (label // place) % features.NUM_CLASSES
        return tf.transpose(image, [2, 0, 1])[..., None], digits

    return examples.map(split, num_parallel_calls=tf.data.AUTOTUNE).unbatch()


def split_channels(images: np.ndarray) -> np.ndarray:
    """[N, 28, 28, C] -> [C, N, 28, 28, 1]: each channel as a batch of single digits."""
    return np.moveaxis(images, -1, 0)[..., None]
