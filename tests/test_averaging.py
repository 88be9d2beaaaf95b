"""The generator's weight average: the update with warm-up, standing BatchNorm statistics, and
what is exported and checkpointed."""


import keras
import numpy as np
import pytest
import tensorflow as tf


from trainer.averaging import STANDING_BATCH, WARMUP, WeightAverage, recompute_batch_norm_statistics
from trainer.data import with_noise
from trainer.gan import DCGAN
from trainer.train_loop import train
from settings import trainer_config, with_settings

CONFIG = trainer_config(generator_filters=(16, 8), discriminator_filters=(8, 16), batch_size=8,
                        mixed_precision="float32", ema_decay=0.99, ema_standing_samples=1024)


def test_the_average_warms_up_then_decays_at_the_configured_rate():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, use_bias=False)])
    kernel = model.trainable_variables[0]
    kernel.assign(np.zeros((2, 1), np.float32))
    average = WeightAverage(model, decay=0.99)
    expected = np.zeros((2, 1), np.float32)
    for t, value in enumerate([1.0, 2.0, 3.0] + [4.0] * 500):
        kernel.assign(np.full((2, 1), value, np.float32))
        average.update(model.trainable_variables, tf.constant(t))
        decay = min(0.99, (1 + t) / (WARMUP + t))
        expected = decay * expected + (1 - decay) * value
        np.testing.assert_allclose(average.averages[0].numpy(), expected, rtol=1e-5)
    # Warm-up: after the first update the initial weights (0) weigh only 1/WARMUP.
    assert float(expected[0, 0]) == pytest.approx(4.0, abs=1e-2)


def test_standing_statistics_are_the_mean_over_batches_and_momentum_is_restored():
    model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization(momentum=0.9)])
    batches = [np.random.default_rng(i).normal(2.0 + i, 1.0 + i, (STANDING_BATCH, 3))
               .astype(np.float32) for i in range(4)]
    recompute_batch_norm_statistics(model, lambda index, size: batches[index][:size],
                                    4 * STANDING_BATCH)
    norm = model.layers[0]
    np.testing.assert_allclose(norm.moving_mean.numpy(),
                               np.mean([b.mean(0) for b in batches], 0), rtol=1e-4)
    np.testing.assert_allclose(norm.moving_variance.numpy(),
                               np.mean([b.var(0) for b in batches], 0), rtol=1e-4)
    assert norm.momentum == 0.9


def steps(gan: DCGAN, count: int) -> None:
    examples = tf.data.Dataset.from_tensor_slices((
        tf.random.stateless_uniform([64, 28, 28, 1], [0, 1], -1, 1),
        tf.range(64, dtype=tf.int64) % 10)).repeat()
    batches = iter(with_noise(examples, gan.config))
    for step in range(count):
        gan.train_step(next(batches))
        gan.step.assign(step + 1)


def test_the_served_generator_has_the_averaged_weights_and_its_own_statistics():
    gan = DCGAN(CONFIG, tf.distribute.get_strategy())
    steps(gan, 5)
    served = gan.served_generator()
    for average, variable in zip(gan.average.averages, served.trainable_variables):
        np.testing.assert_array_equal(average.numpy(), variable.numpy())
    raw = [v.numpy() for v in gan.generator.trainable_variables]
    assert any(not np.allclose(a, r) for a, r in zip(raw, (v.numpy() for v in
                                                             served.trainable_variables)))
    served_means = [layer.moving_mean.numpy() for layer in served.layers
                    if isinstance(layer, keras.layers.BatchNormalization)]
    raw_means = [layer.moving_mean.numpy() for layer in gan.generator.layers
                 if isinstance(layer, keras.layers.BatchNormalization)]
    assert served_means and all(not np.allclose(s, r) for s, r in zip(served_means, raw_means))
    # The same statistics on every export (fixed noise).
    again = [layer.moving_mean.numpy() for layer in gan.served_generator().layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    for first, second in zip(served_means, again):
        np.testing.assert_array_equal(first, second)


def test_without_averaging_the_trained_generator_is_served():
    gan = DCGAN(with_settings(CONFIG, ema_decay=0.0), tf.distribute.get_strategy())
    assert gan.average is None
    steps(gan, 2)
    for served, trained in zip(gan.served_generator().weights, gan.generator.weights):
        np.testing.assert_array_equal(served.numpy(), trained.numpy())


def test_the_average_is_checkpointed_and_resumed(tmp_path):
    config = with_settings(CONFIG, train_steps=4, checkpoint_every_steps=4,
                           sample_every_steps=1000)
    examples = tf.data.Dataset.from_tensor_slices((
        tf.random.stateless_uniform([64, 28, 28, 1], [0, 2], -1, 1),
        tf.range(64, dtype=tf.int64) % 10)).repeat()
    first = DCGAN(config, tf.distribute.get_strategy())
    train(first, with_noise(examples, config), str(tmp_path / "run1"), str(tmp_path / "ckpt"))
    resumed = DCGAN(config, tf.distribute.get_strategy())
    train(resumed, with_noise(examples, config), str(tmp_path / "run2"), str(tmp_path / "ckpt"))
    for a, b in zip(first.average.averages, resumed.average.averages):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("decay", [-0.1, 1.0])
def test_a_decay_outside_0_1_is_refused(decay):
    with pytest.raises(ValueError, match="ema_decay must be in"):
        with_settings(CONFIG, ema_decay=decay)
