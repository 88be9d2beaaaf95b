"""The generator SavedModel served by TF Serving.

Signatures (batch-major, so TF Serving's batching applies):
  serving_default: z float32 [N, z_dim] -> images uint8 [N, 28, 28, C], png string [N]
                   (C: the data's channels; a 3-channel image is an RGB PNG)
  generate:        seed int64 [N]       -> the same outputs, deterministic per seed
A conditional generator takes `label` int64 [N] (0-9) beside `z` and `seed`.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from dcgan_common import features
from dcgan_common import images as image_utils
from dcgan_common.layout import WARMUP_FILE

IMAGES_OUTPUT = "images"
PNG_OUTPUT = "png_bytes"  # TF Serving's REST API base64-encodes outputs named *_bytes.
WARMUP_BATCH = 4


def noise_from_seeds(seeds: tf.Tensor, z_dim: int) -> tf.Tensor:
    """One standard-normal z per int64 seed, stateless: a seed always gives the same z."""
    return tf.map_fn(
        lambda seed: tf.random.stateless_normal([z_dim], seed=tf.stack([seed, seed * 0])),
        seeds, fn_output_signature=tf.float32)


def float32_copy(model: keras.Model) -> keras.Model:
    """A copy of `model` computing in float32, with its weights, outside any distribution
    strategy: what is served, whatever precision trained it (serving hosts may lack bfloat16
    hardware). Exact: mixed precision layers keep float32 variables."""
    copy = keras.models.clone_model(model, clone_function=lambda layer: layer.__class__.from_config(
        {**layer.get_config(), "dtype": "float32"}))
    copy.set_weights(model.get_weights())
    return copy


class GeneratorModule(tf.Module):
    """Holds the generator, computing in float32, and its serving signatures."""

    def __init__(self, generator: keras.Model):
        super().__init__(name="dcgan_generator")
        if any(layer.dtype_policy.name != "float32" for layer in generator.layers):
            generator = float32_copy(generator)
        self.generator = generator
        z_dim = int(generator.inputs[0].shape[-1])
        self.z_dim = z_dim
        self.conditional = len(generator.inputs) == 2
        z_spec = tf.TensorSpec([None, z_dim], tf.float32, name="z")
        seed_spec = tf.TensorSpec([None], tf.int64, name="seed")
        if self.conditional:
            label_spec = tf.TensorSpec([None], tf.int64, name="label")
            self.serving_default = tf.function(self._from_z, [z_spec, label_spec])
            self.generate = tf.function(
                lambda seed, label: self._from_z(noise_from_seeds(seed, z_dim), label),
                [seed_spec, label_spec])
        else:
            self.serving_default = tf.function(self._from_z, [z_spec])
            self.generate = tf.function(
                lambda seed: self._from_z(noise_from_seeds(seed, z_dim)), [seed_spec])

    def _from_z(self, z: tf.Tensor, label: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
        inputs = z
        if label is not None:
            checks = [
                tf.debugging.assert_equal(tf.shape(label)[0], tf.shape(z)[0],
                                          message="label needs one entry per row of z/seed"),
                tf.debugging.assert_greater_equal(label, tf.constant(0, tf.int64),
                                                  message="label must be a digit 0-9"),
                tf.debugging.assert_less(label, tf.constant(features.NUM_CLASSES, tf.int64),
                                         message="label must be a digit 0-9")]
            with tf.control_dependencies(checks):
                inputs = [tf.identity(z), tf.one_hot(label, features.NUM_CLASSES)]
        pixels = image_utils.to_uint8(self.generator(inputs, training=False))
        png = tf.map_fn(tf.io.encode_png, pixels, fn_output_signature=tf.string)
        return {IMAGES_OUTPUT: pixels, PNG_OUTPUT: png}


def warmup_requests(z_dim: int, conditional: bool = False
                    ) -> list[prediction_log_pb2.PredictionLog]:
    """One PredictionLog per signature, replayed by TF Serving before it serves a version."""
    inputs = {
        "serving_default": {"z": np.zeros([WARMUP_BATCH, z_dim], np.float32)},
        "generate": {"seed": np.arange(WARMUP_BATCH, dtype=np.int64)},
    }
    if conditional:
        for tensors in inputs.values():
            tensors["label"] = np.arange(WARMUP_BATCH, dtype=np.int64) % features.NUM_CLASSES
    logs = []
    for signature, tensors in inputs.items():
        request = predict_pb2.PredictRequest()
        request.model_spec.signature_name = signature
        for name, value in tensors.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
        logs.append(prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request)))
    return logs


def export_generator(generator: keras.Model, export_dir: str) -> None:
    module = GeneratorModule(generator)
    tf.saved_model.save(module, export_dir, signatures={
        "serving_default": module.serving_default, "generate": module.generate})
    warmup_path = os.path.join(export_dir, WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(warmup_path))
    with tf.io.TFRecordWriter(warmup_path) as writer:
        for log in warmup_requests(module.z_dim, module.conditional):
            writer.write(log.SerializeToString())
