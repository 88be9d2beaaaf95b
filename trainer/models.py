"""The DCGAN generator and discriminator of Radford et al. (2016), for 28x28 images of one
digit per channel."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from dcgan_common.config import TrainerConfig
from dcgan_common import features
from trainer.hardware import resolve
from trainer.strided_conv import StridedConv2D, StridedConv2DTranspose

# 28 = 7 * 2 * 2: two stride-2 upsamplings from the projected feature map.
PROJECTED_SIZE = features.IMAGE_SIZE // 4


class ConcatLabelChannels(layers.Layer):
    """[N, H, W, C] and a one-hot [N, K] -> [N, H, W, C + K]: the label as constant channels."""

    def call(self, maps, onehot):
        onehot = keras.ops.cast(onehot, maps.dtype)
        height, width = maps.shape[1], maps.shape[2]
        tiled = keras.ops.tile(onehot[:, None, None, :], [1, height, width, 1])
        return keras.ops.concatenate([maps, tiled], axis=-1)

    def compute_output_shape(self, maps_shape, onehot_shape):
        return (*maps_shape[:-1], maps_shape[-1] + onehot_shape[-1])


class CategoricalCode(layers.Layer):
    """z [N, D] -> [N, D + C * K]: z with one one-hot per image channel appended, channel c's
    the argmax of z[:, c * K:(c + 1) * K].

    For a standard-normal z each argmax is uniform over the K categories, independently per
    channel: the generator keeps its noise input (and its serving signature) and gets a
    discrete code per channel to split that channel's digit by (InfoGAN's categorical code,
    drawn from z instead of beside it).
    """

    def __init__(self, categories: int, channels: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.categories = categories
        self.channels = channels

    def call(self, z):
        code = keras.ops.one_hot(category_of(z, self.categories, self.channels),
                                 self.categories, dtype=z.dtype)
        return keras.ops.concatenate(
            [z, keras.ops.reshape(code, (-1, self.channels * self.categories))], axis=-1)

    def compute_output_shape(self, z_shape):
        return (*z_shape[:-1], z_shape[-1] + self.channels * self.categories)

    def get_config(self):
        return {**super().get_config(), "categories": self.categories,
                "channels": self.channels}


@keras.saving.register_keras_serializable(package="dcgan")
class ChannelsAsImages(layers.Layer):
    """[N, H, W, C] -> [N * C, H, W, 1]: each channel an image of its own (example-major), so
    one network reads every channel alone, with the same weights."""

    def call(self, images):
        _, height, width, _ = images.shape
        return keras.ops.reshape(keras.ops.transpose(images, (0, 3, 1, 2)),
                                 (-1, height, width, 1))

    def compute_output_shape(self, shape):
        batch = None if shape[0] is None else shape[0] * shape[3]
        return (batch, *shape[1:3], 1)


@keras.saving.register_keras_serializable(package="dcgan")
class ImagesAsChannels(layers.Layer):
    """[N * C, K] -> [N, C * K]: ChannelsAsImages' inverse for per-channel outputs, channel c's
    at c * K..(c + 1) * K."""

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels

    def call(self, outputs):
        return keras.ops.reshape(outputs, (-1, self.channels * outputs.shape[-1]))

    def compute_output_shape(self, shape):
        batch = None if shape[0] is None else shape[0] // self.channels
        return (batch, self.channels * shape[-1])

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


@keras.saving.register_keras_serializable(package="dcgan")
class Pack(layers.Layer):
    """[N, H, W, C] -> [N / m, H, W, m * C]: each m consecutive images as one (PacGAN, Lin et
    al. 2018): the discriminator judges m samples of one kind at once, so a generator that
    drops modes draws packs that look alike, which the discriminator can tell from real ones."""

    def __init__(self, pack: int, **kwargs):
        super().__init__(**kwargs)
        self.pack = pack

    def call(self, images):
        _, height, width, channels = images.shape
        grouped = keras.ops.reshape(images, (-1, self.pack, height, width, channels))
        grouped = keras.ops.transpose(grouped, (0, 2, 3, 1, 4))
        return keras.ops.reshape(grouped, (-1, height, width, self.pack * channels))

    def compute_output_shape(self, shape):
        batch = None if shape[0] is None else shape[0] // self.pack
        return (batch, *shape[1:3], shape[3] * self.pack)

    def get_config(self):
        return {**super().get_config(), "pack": self.pack}


@keras.saving.register_keras_serializable(package="dcgan")
class MinibatchStddev(layers.Layer):
    """[N, H, W, C] -> [N, H, W, C + 1]: the feature maps' standard deviation over the batch,
    averaged to one number, appended as a constant channel (Karras et al. 2018, ProGAN): the
    discriminator sees how varied a batch is, so a generator that collapses is told apart.
    Real and fake batches are judged separately here; the spread is the global batch's, summed
    over the replicas (as synchronized BatchNorm does), so the replicas agree."""

    def call(self, maps):
        values = tf.cast(maps, tf.float32)
        moments = [tf.cast(tf.shape(values)[0], tf.float32), tf.reduce_sum(values, 0),
                   tf.reduce_sum(values * values, 0)]
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            moments = context.all_reduce(tf.distribute.ReduceOp.SUM, moments)
        count, total, squares = moments
        variance = tf.maximum(squares / count - (total / count) ** 2, 0.0)
        level = tf.cast(tf.reduce_mean(tf.sqrt(variance + 1e-8)), maps.dtype)
        return keras.ops.concatenate(
            [maps, keras.ops.ones_like(maps[..., :1]) * level], axis=-1)

    def compute_output_shape(self, shape):
        return (*shape[:-1], shape[-1] + 1)


@keras.saving.register_keras_serializable(package="dcgan")
class StepwiseSpectralNormalization(layers.SpectralNormalization):
    """keras.layers.SpectralNormalization, applied once per train step by `project()` instead
    of in every training call.

    Keras' wrapper assigns the normalised kernel inside the call; under MirroredStrategy that
    assignment is a cross-replica reduction, and the replicas issued it in different orders
    (a collective shape mismatch, found by the two-replica test). The train step projects
    in cross-replica context instead, before its updates: the same weights on every replica.
    """

    def call(self, inputs, training=False):
        return super().call(inputs, training=False)

    def project(self) -> None:
        """One power iteration; the kernel divided by its estimated spectral norm."""
        vector_u, kernel = self.normalized_weights()
        self.vector_u.assign(vector_u)
        self.kernel.assign(kernel)


def category_of(z, categories: int, channels: int = 1):
    """The latent category of each z and image channel [N, C]: channel c's is the index of
    the largest of z[:, c * K:(c + 1) * K]."""
    grouped = keras.ops.reshape(z[:, :channels * categories], (-1, channels, categories))
    return keras.ops.argmax(grouped, axis=-1)


def model_inputs(config: TrainerConfig, first: keras.KerasTensor
                 ) -> tuple[list[keras.KerasTensor], keras.KerasTensor | None]:
    """The model's inputs: `first`, plus a one-hot label input when conditional."""
    if not config.model.conditional:
        return [first], None
    label = keras.Input((features.NUM_CLASSES,), name="label_onehot")
    return [first, label], label


def _elementwise_policy(config: TrainerConfig) -> str:
    """BatchNorm and activations: float32 under mixed_bfloat16.

    CPUs have no bfloat16 arithmetic for element-wise kernels. In the TensorFlow profiler
    this took a bfloat16 step from 107 to 99 ms (LeakyReluGrad 19 -> 1 ms, casts +4 ms).
    """
    precision = config.runtime.mixed_precision
    return "float32" if precision == "mixed_bfloat16" else precision


def _conv_classes(config: TrainerConfig) -> tuple[type[layers.Conv2D],
                                                    type[layers.Conv2DTranspose]]:
    if config.runtime.filter_gradient == "forward_conv":
        return StridedConv2D, StridedConv2DTranspose
    return layers.Conv2D, layers.Conv2DTranspose


def _batch_norm(config: TrainerConfig) -> layers.Layer:
    return layers.BatchNormalization(synchronized=config.runtime.sync_batch_norm,
                                     dtype=_elementwise_policy(config))


def build_generator(config: TrainerConfig) -> keras.Model:
    """z [N, z_dim] -> images [N, 28, 28, channels] in [-1, 1].

    Project and reshape, then 5x5 stride-2 transposed convolutions with
    BatchNorm and ReLU, and a tanh output layer.
    """
    config = resolve(config)
    first, second = config.model.generator_filters
    inputs, label = model_inputs(config, keras.Input((config.model.z_dim,), name="z"))
    policy = config.runtime.mixed_precision  # Hidden layers; the output stays float32 for the loss.
    _, conv_transpose = _conv_classes(config)
    x = inputs[0] if label is None else layers.Concatenate()(inputs)
    if config.model.latent_categories:
        x = CategoricalCode(config.model.latent_categories, config.model.channels,
                            dtype=policy)(x)
    x = layers.Dense(PROJECTED_SIZE * PROJECTED_SIZE * first, use_bias=False, dtype=policy)(x)
    x = layers.ReLU(dtype=_elementwise_policy(config))(_batch_norm(config)(x))
    x = layers.Reshape((PROJECTED_SIZE, PROJECTED_SIZE, first), dtype=policy)(x)
    for filters, upsample in ((first, False), (second, True)):
        if label is not None:
            x = ConcatLabelChannels(dtype=policy)(x, label)
        if upsample:
            x = conv_transpose(filters, config.model.kernel_size, strides=2, padding="same",
                               use_bias=False, dtype=policy)(x)
            x = layers.ReLU(dtype=_elementwise_policy(config))(_batch_norm(config)(x))
        for _ in range(config.model.generator_extra_layers):
            x = conv_transpose(filters, config.model.kernel_size, strides=1, padding="same",
                               use_bias=False, dtype=policy)(x)
            x = layers.ReLU(dtype=_elementwise_policy(config))(_batch_norm(config)(x))
    if label is not None:
        x = ConcatLabelChannels(dtype=policy)(x, label)
    images = conv_transpose(config.model.channels, config.model.kernel_size, strides=2,
                            padding="same",
                            activation="tanh", dtype="float32", name="images")(x)
    return keras.Model(inputs if label is not None else inputs[0], images, name="generator")


def _normalized(config: TrainerConfig, layer: layers.Layer) -> layers.Layer:
    """`layer`, spectrally normalised when the discriminator is."""
    if config.model.discriminator_normalization == "spectral":
        return StepwiseSpectralNormalization(layer, dtype=layer.dtype_policy)
    return layer


def _strided_convolutions(config: TrainerConfig, x: keras.KerasTensor,
                          filters: tuple[int, ...], label: keras.KerasTensor | None = None
                          ) -> keras.KerasTensor:
    """5x5 stride-2 convolutions, no pooling; BatchNorm on every layer but the first (or
    spectral normalisation on every layer); LeakyReLU(0.2); the label beside the image and
    the first layer's maps when conditional (carpedm20)."""
    policy = config.runtime.mixed_precision
    conv, _ = _conv_classes(config)
    spectral = config.model.discriminator_normalization == "spectral"
    for index, width in enumerate(filters):
        if label is not None and index < 2:
            x = ConcatLabelChannels(dtype=policy)(x, label)
        batch_norm = index > 0 and not spectral
        x = _normalized(config, conv(width, config.model.kernel_size, strides=2, padding="same",
                                     use_bias=not batch_norm, dtype=policy))(x)
        if batch_norm:
            x = _batch_norm(config)(x)
        x = layers.LeakyReLU(config.model.leaky_relu_slope, dtype=_elementwise_policy(config))(x)
    return x


def _category_logits(config: TrainerConfig, images: keras.KerasTensor,
                     flat: keras.KerasTensor) -> keras.KerasTensor:
    """The latent code's head, [N, C * K] (channel c's logits at c * K..(c + 1) * K): on the
    discriminator's features, or with `code_head_filters` a network of its own that reads
    each channel alone (shared weights), so a channel's category is found from its digit only."""
    model = config.model
    if model.code_head_filters:
        policy = config.runtime.mixed_precision
        single = _strided_convolutions(config, ChannelsAsImages(dtype=policy)(images),
                                       model.code_head_filters)
        logits = _normalized(config, layers.Dense(model.latent_categories, dtype="float32",
                                                  name="category_logits"))(
            layers.Flatten(dtype=policy)(single))
        return ImagesAsChannels(model.channels, dtype="float32")(logits)
    return _normalized(config, layers.Dense(model.channels * model.latent_categories,
                                            dtype="float32", name="category_logits"))(flat)


def build_discriminator(config: TrainerConfig) -> keras.Model:
    """images [N, 28, 28, channels] -> one logit [N, 1] (with `latent_categories`: and the latent
    code's logits [N, channels * K], InfoGAN's Q head); with `pack` m > 1, one logit per m
    consecutive images [N / m, 1].

    5x5 stride-2 convolutions, no pooling, no hidden dense layer; BatchNorm on
    every layer but the first and the last (or spectral normalisation on every layer);
    LeakyReLU(0.2).
    """
    config = resolve(config)
    policy = config.runtime.mixed_precision  # Hidden layers; the output stays float32 for the loss.
    inputs, label = model_inputs(config, keras.Input(
        (features.IMAGE_SIZE, features.IMAGE_SIZE, config.model.channels), name="images"))
    x = inputs[0] if config.model.pack == 1 else Pack(config.model.pack, dtype=policy)(inputs[0])
    x = _strided_convolutions(config, x, config.model.discriminator_filters, label)
    if config.model.minibatch_stddev:
        x = MinibatchStddev(dtype=policy)(x)
    flat = layers.Flatten(dtype=policy)(x)
    outputs = _normalized(config, layers.Dense(1, dtype="float32", name="logit"))(flat)
    if config.model.latent_categories:
        outputs = [outputs, _category_logits(config, inputs[0], flat)]
    return keras.Model(inputs if label is not None else inputs[0], outputs, name="discriminator")
