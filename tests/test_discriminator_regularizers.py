"""The discriminator's regularisers: spectral normalisation, the R1 penalty (every step or
lazy).

Each is checked against what it is defined to do, computed independently; their equivalence
on two replicas and with the forward-convolution gradients is in tests/test_gan.py.
"""


import keras
import numpy as np
import pytest
import tensorflow as tf

from dcgan_common.features import REAL
from test_gan import CONFIG, batch
from trainer.gan import DCGAN
from settings import with_settings


def top_singular_value(kernel: np.ndarray) -> float:
    """The spectral norm Miyato et al. bound: the kernel as a [inputs, outputs] matrix."""
    return float(np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0])


def kernels(gan: DCGAN) -> list[np.ndarray]:
    return [np.array(v) for v in gan.discriminator.trainable_variables if "kernel" in v.path]


def train(config, steps: int) -> DCGAN:
    gan = DCGAN(config, tf.distribute.get_strategy())
    for step in range(steps):
        gan.train_step(batch(config, seed=step))
        gan.step.assign(step + 1)
    return gan


def test_spectral_normalisation_keeps_every_discriminator_kernel_at_norm_one():
    """After training, every kernel of the discriminator (convolutions and the logit) has
    spectral norm 1, and the discriminator has no BatchNorm; the specification's
    discriminator (BatchNorm) has kernels of other norms, so the check can fail."""
    spectral = train(with_settings(CONFIG, discriminator_normalization="spectral"), 20)
    assert not [layer for layer in spectral.discriminator.layers
                if isinstance(layer, keras.layers.BatchNormalization)]
    norms = [top_singular_value(kernel) for kernel in kernels(spectral)]
    assert len(norms) == 3
    np.testing.assert_allclose(norms, 1.0, rtol=0.02)
    batch_norm = train(CONFIG, 20)
    other_norms = [top_singular_value(kernel) for kernel in kernels(batch_norm)]
    assert not np.allclose(other_norms, 1.0, rtol=0.02), other_norms


def squared_input_gradient(gan: DCGAN, images: np.ndarray) -> float:
    """Mean over the images of |d logit / d image|^2, computed here."""
    images = tf.convert_to_tensor(images)
    with tf.GradientTape() as tape:
        tape.watch(images)
        logits = gan.discriminator(images, training=True)
    gradient = tape.gradient(logits, images).numpy()
    return float(np.mean(np.sum(gradient ** 2, axis=(1, 2, 3))))


@pytest.mark.parametrize("filter_gradient", ["native", "forward_conv"])
def test_r1_penalty_is_half_the_weight_times_the_squared_input_gradient(filter_gradient):
    """The reported penalty against an independent computation on the same networks
    (learning rate 0): r1_weight / 2 * mean over the real batch of |d logit / d image|^2."""
    config = with_settings(CONFIG, r1_weight=3.0, learning_rate=0.0,
                           filter_gradient=filter_gradient)
    gan = DCGAN(config, tf.distribute.get_strategy())
    b = batch(config)
    expected = 0.5 * 3.0 * squared_input_gradient(gan, b[REAL])
    assert expected > 0
    assert float(gan.train_step(b)["r1_penalty"]) == pytest.approx(expected, rel=1e-5)


def test_lazy_r1_applies_the_penalty_every_interval_steps_interval_times_heavier():
    """r1_interval 4 (learning rate 0, one batch): the penalty is in the steps at step 0 and
    4 only, at 4 * r1_weight / 2 * the squared input gradient; the other steps are the
    unpenalised step (no r1_penalty), and only those two compiled steps exist."""
    config = with_settings(CONFIG, r1_weight=3.0, r1_interval=4, learning_rate=0.0)
    gan = DCGAN(config, tf.distribute.get_strategy())
    b = batch(config)
    expected = 4 * 0.5 * 3.0 * squared_input_gradient(gan, b[REAL])
    reported = []
    for step in range(8):
        reported.append(gan.train_step(b).get("r1_penalty"))
        gan.step.assign(step + 1)
    assert [step for step, value in enumerate(reported) if value is not None] == [0, 4]
    assert float(reported[0]) == pytest.approx(expected, rel=1e-5)
    assert float(reported[4]) == pytest.approx(expected, rel=1e-5)
    assert sorted(gan._compiled_steps) == [False, True]
    assert all(step.experimental_get_tracing_count() == 1
               for step in gan._compiled_steps.values())


def test_r1_penalty_changes_the_discriminator_update_only_through_its_weight():
    """Same seed, same batch: with the penalty the discriminator's weights move differently;
    without it no r1_penalty is reported (the step is the specification's)."""
    plain, penalised = (train(with_settings(CONFIG, r1_weight=weight), 1)
                        for weight in (0.0, 10.0))
    assert "r1_penalty" not in plain.train_step(batch(CONFIG))
    moved = [not np.allclose(a, b) for a, b in zip(kernels(plain), kernels(penalised))]
    assert all(moved)


@pytest.mark.parametrize("changes, message", [
    ({"discriminator_normalization": "layer"}, "discriminator_normalization must be one of"),
    ({"r1_weight": -1.0}, "r1_weight must be >= 0, got -1.0"),
    ({"r1_weight": float("nan")}, "r1_weight must be >= 0, got nan"),
    ({"r1_interval": 0}, "r1_interval must be >= 1, got 0"),
])
def test_regulariser_settings_outside_their_range_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        with_settings(CONFIG, **changes)
