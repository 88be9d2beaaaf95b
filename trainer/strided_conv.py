"""Strided 'same' convolutions with their gradients arranged for CPU speed.

Why: on CPU, oneDNN runs TensorFlow's Conv2DBackpropFilter with an older kernel than the
forward convolution; the same sums written as a forward convolution run 1.4-1.6x faster in
bfloat16 on the AVX512_BF16 build machine (about even in float32), and a transposed
convolution onto a one-channel map runs 2x faster as a sub-pixel convolution
(bench/bench_step_ops.py). The layers compute the same values as keras.layers.Conv2D /
Conv2DTranspose with the same weights; only the arithmetic of the passes is arranged
differently (tests/test_strided_conv.py checks values and both gradients against Keras').

The filter gradient of small = conv(large, w, stride s) is
    dw[i, j, c, d] = sum over n, p, q of large_padded[n, s*p + i, s*q + j, c] * dsmall[n, p, q, d]:
with the batch as channels (large -> [c, H, W, n], dsmall -> [p, q, n, d] as the filter)
it is a stride-1 convolution with dilation s whose output is [c, k, k, d].
"""

from __future__ import annotations

import keras
import tensorflow as tf


def _same_padding(size: int, out: int, kernel: int, stride: int) -> list[int]:
    total = max((out - 1) * stride + kernel - size, 0)
    return [total // 2, total - total // 2]


def filter_gradient(large: tf.Tensor, small: tf.Tensor, kernel_size: tuple[int, int],
                    strides: tuple[int, int]) -> tf.Tensor:
    """The gradient of the 'same' convolution large -> small for its [k, k, C, D] filter.

    `large` is the convolution's input [N, H, W, C]; `small` [N, H/s, W/s, D] the gradient
    of its output (for a transposed convolution: large is the output's gradient, small
    the input).
    """
    pads = [_same_padding(large.shape[axis], small.shape[axis], kernel_size[axis - 1],
                          strides[axis - 1]) for axis in (1, 2)]
    batch_as_channels = tf.pad(tf.transpose(large, [3, 1, 2, 0]), [[0, 0], *pads, [0, 0]])
    small_as_filter = tf.transpose(small, [1, 2, 0, 3])
    gradient = tf.nn.conv2d(batch_as_channels, small_as_filter, 1, "VALID", dilations=strides)
    return tf.transpose(gradient[:, :kernel_size[0], :kernel_size[1]], [1, 2, 0, 3])


def _sub_pixel_taps(kernel: int, stride: int, small: int) -> tuple[list[list[int]], list[int]]:
    """Which filter tap each output phase reads at each offset of the sub-pixel convolution.

    The 'same' transposed convolution writes large[s*m + a] = sum over o, t with
    s*o + t - pad = s*m + a of small[o] * w[t]: for phase a, tap t reads small[m + d] with
    d = (a + pad - t) / s. Returns taps[a][e] (e = d - lowest d; `kernel` = no tap) and the
    stride-1 convolution's padding [-lowest d, highest d].
    """
    pad = _same_padding(small * stride, small, kernel, stride)[0]
    offsets = {(a, (a + pad - t) // stride): t for a in range(stride) for t in range(kernel)
               if (a + pad - t) % stride == 0}
    low, high = min(d for _, d in offsets), max(d for _, d in offsets)
    return ([[offsets.get((a, d), kernel) for d in range(low, high + 1)] for a in range(stride)],
            [-low, high])


def transpose_onto(small: tf.Tensor, kernel: tf.Tensor, large_shape: tf.Tensor,
                   strides: tuple[int, int]) -> tf.Tensor:
    """The 'same' transposed convolution of `small` onto a large map of `large_shape`.

    A one-channel large map (the image layers) is written as one stride-1 convolution to
    s*s channels, one per output phase, and depth_to_space ("sub-pixel"): 2x faster on
    CPU than Conv2DBackpropInput with one output channel, which is 1.5x slower than it
    with 64 channels (measured, bench/bench_step_ops.py), so only there.
    """
    size, (stride, other) = small.shape[1], strides
    if kernel.shape[2] != 1 or stride != other or small.shape[2] != size:
        return tf.nn.conv2d_transpose(small, kernel, large_shape, strides, "SAME")
    taps, padding = _sub_pixel_taps(kernel.shape[0], stride, size)
    # [k, k, 1, D] -> [k + 1, k + 1, D, 1], the extra row and column zero ("no tap").
    padded = tf.pad(tf.transpose(kernel, [0, 1, 3, 2]), [[0, 1], [0, 1], [0, 0], [0, 0]])
    phases = tf.concat([tf.gather(tf.gather(padded, taps[a], axis=0), taps[b], axis=1)
                        for a in range(stride) for b in range(stride)], axis=-1)
    return tf.nn.depth_to_space(
        tf.nn.conv2d(small, phases, 1, [[0, 0], padding, padding, [0, 0]]), stride)


def conv(large: tf.Tensor, kernel: tf.Tensor, strides: tuple[int, int]) -> tf.Tensor:
    """tf.nn.conv2d(large, kernel, strides, 'SAME'), with the filter gradient above."""

    @tf.custom_gradient
    def forward(large, kernel):
        def gradients(d_small):
            return (transpose_onto(d_small, kernel, tf.shape(large), strides),
                    filter_gradient(large, d_small, kernel.shape[:2], strides))
        return tf.nn.conv2d(large, kernel, strides, "SAME"), gradients

    return forward(large, tf.convert_to_tensor(kernel))


def conv_transpose(small: tf.Tensor, kernel: tf.Tensor, strides: tuple[int, int]) -> tf.Tensor:
    """tf.nn.conv2d_transpose to [N, H*s, W*s, kernel C], with the filter gradient above."""

    @tf.custom_gradient
    def forward(small, kernel):
        height, width = small.shape[1] * strides[0], small.shape[2] * strides[1]
        shape = tf.stack([tf.shape(small)[0], height, width, kernel.shape[2]])

        def gradients(d_large):
            return (tf.nn.conv2d(d_large, kernel, strides, "SAME"),
                    filter_gradient(d_large, small, kernel.shape[:2], strides))
        return transpose_onto(small, kernel, shape, strides), gradients

    return forward(small, tf.convert_to_tensor(kernel))


def _check_same_padding(layer: keras.layers.Layer) -> None:
    if layer.padding != "same" or layer.data_format != "channels_last" or \
            tuple(layer.dilation_rate) != (1, 1):
        raise ValueError(f"{type(layer).__name__} supports padding='same', channels_last and "
                         f"no dilation only, got {layer.padding!r}, {layer.data_format!r}, "
                         f"dilation {layer.dilation_rate}")


@keras.saving.register_keras_serializable(package="dcgan")
class StridedConv2D(keras.layers.Conv2D):
    """keras.layers.Conv2D (padding='same') with the filter gradient as a forward convolution."""

    def build(self, input_shape):
        _check_same_padding(self)
        super().build(input_shape)

    def convolution_op(self, inputs, kernel):
        return conv(inputs, kernel, tuple(self.strides))


@keras.saving.register_keras_serializable(package="dcgan")
class StridedConv2DTranspose(keras.layers.Conv2DTranspose):
    """keras.layers.Conv2DTranspose (padding='same', output = input x strides), with the
    filter gradient as a forward convolution."""

    def build(self, input_shape):
        _check_same_padding(self)
        if self.output_padding is not None:
            raise ValueError("StridedConv2DTranspose computes output_padding itself")
        super().build(input_shape)

    def call(self, inputs):
        outputs = conv_transpose(inputs, self.kernel, tuple(self.strides))
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs
