"""trainer/strided_conv.py: the same values and gradients as Keras' convolutions."""

import keras
import numpy as np
import pytest
import tensorflow as tf


from trainer.models import build_discriminator, build_generator
from trainer.strided_conv import StridedConv2D, StridedConv2DTranspose
from settings import trainer_config

# (layer class, stock class, input shape, filters, kernel, strides, bias, activation): every
# convolution of the DCGAN, the one-channel image layers (sub-pixel path) included.
CASES = [
    (StridedConv2D, keras.layers.Conv2D, [3, 28, 28, 1], 8, 5, 2, True, None),  # D input
    (StridedConv2D, keras.layers.Conv2D, [3, 14, 14, 8], 16, 5, 2, False, None),
    (StridedConv2D, keras.layers.Conv2D, [3, 28, 28, 2], 8, 3, 2, False, None),
    (StridedConv2DTranspose, keras.layers.Conv2DTranspose, [3, 7, 7, 16], 8, 5, 2, False, None),
    (StridedConv2DTranspose, keras.layers.Conv2DTranspose, [3, 14, 14, 8], 1, 5, 2, True,
     "tanh"),  # G output
    (StridedConv2DTranspose, keras.layers.Conv2DTranspose, [3, 14, 14, 8], 1, 4, 2, False, None),
    (StridedConv2DTranspose, keras.layers.Conv2DTranspose, [3, 14, 14, 8], 8, 5, 1, False, None),
]


def values_and_gradients(layer, x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        # Weighted so every output element gets its own gradient.
        loss = tf.reduce_sum(y * tf.random.stateless_normal(y.shape, [7, 7]))
    return [y.numpy()] + [g.numpy() for g in tape.gradient(loss, [x, *layer.trainable_variables])]


@pytest.mark.parametrize("cls, stock, shape, filters, kernel, strides, bias, activation", CASES)
def test_values_and_gradients_match_keras(cls, stock, shape, filters, kernel, strides, bias,
                                          activation):
    kwargs = dict(strides=strides, padding="same", use_bias=bias, activation=activation)
    layer, reference = cls(filters, kernel, **kwargs), stock(filters, kernel, **kwargs)
    x = tf.random.stateless_normal(shape, [1, 2])
    layer.build(x.shape)
    reference.build(x.shape)
    weights = [np.random.default_rng(3).normal(size=w.shape) for w in reference.get_weights()]
    layer.set_weights(weights)
    reference.set_weights(weights)
    ours, theirs = values_and_gradients(layer, x), values_and_gradients(reference, x)
    assert ours[0].shape == theirs[0].shape
    for name, a, b in zip(["output", "input gradient", "kernel gradient", "bias gradient"],
                          ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max(), err_msg=name)


def test_valid_padding_is_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="padding='same'"):
        StridedConv2D(4, 3, padding="valid").build((None, 8, 8, 1))


def test_the_config_chooses_the_layers():
    for setting, conv, transpose in (("native", keras.layers.Conv2D,
                                      keras.layers.Conv2DTranspose),
                                     ("forward_conv", StridedConv2D, StridedConv2DTranspose)):
        config = trainer_config(filter_gradient=setting)
        assert {type(l) for l in build_discriminator(config).layers
                if isinstance(l, keras.layers.Conv2D)} == {conv}
        assert {type(l) for l in build_generator(config).layers
                if isinstance(l, keras.layers.Conv2DTranspose)} == {transpose}
    with pytest.raises(ValueError, match="filter_gradient must be one of"):
        trainer_config(filter_gradient="fast")

