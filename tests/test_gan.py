"""The DCGAN train step: update schedule, optimizers, and MirroredStrategy equivalence."""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from dcgan_common.config import TrainerConfig
from trainer.data import with_noise
from dcgan_common.features import REAL, Z
from trainer.gan import DCGAN
from trainer.models import MinibatchStddev, Pack
from settings import trainer_config, with_settings

# float32: the numerical comparisons below are at float tolerance.
CONFIG = trainer_config(generator_filters=(16, 8), discriminator_filters=(8, 16), batch_size=8,
                        mixed_precision="float32")


def batch(config: TrainerConfig, seed: int = 0) -> dict[str, tf.Tensor]:
    examples = tf.data.Dataset.from_tensor_slices((
        tf.random.stateless_uniform([config.optimizer.batch_size, 28, 28, config.model.channels],
                                    [seed, 1], -1, 1),
        tf.range(config.optimizer.batch_size, dtype=tf.int64) % 10))
    return next(iter(with_noise(examples, config)))


def weights(gan: DCGAN) -> list[np.ndarray]:
    return [np.array(v) for v in gan.generator.weights + gan.discriminator.weights]


def test_batch_carries_separate_noise_for_every_generator_update():
    b = batch(CONFIG)
    assert b[REAL].shape == (8, 28, 28, 1)
    assert b[Z].shape == (8, 2, 100)
    assert not np.allclose(b[Z][:, 0], b[Z][:, 1])


@pytest.mark.parametrize("generator_steps", [1, 2, 3])
def test_update_schedule_two_discriminator_updates_and_n_generator_updates(generator_steps):
    config = with_settings(CONFIG, generator_steps=generator_steps)
    gan = DCGAN(config, tf.distribute.get_strategy())
    for _ in range(2):
        metrics = gan.train_step(batch(config))
    assert int(gan.d_optimizer.iterations.numpy()) == 4  # real + fake, twice.
    assert int(gan.g_optimizer.iterations.numpy()) == 2 * generator_steps
    assert 0.0 < float(metrics["d_real"]) < 1.0 and 0.0 < float(metrics["d_fake"]) < 1.0
    assert np.isfinite(float(metrics["d_loss"])) and np.isfinite(float(metrics["g_loss"]))


@pytest.mark.parametrize("generator_steps", [1, 2])
def test_first_generator_update_reuses_the_discriminators_fake_batch(generator_steps):
    """One generator forward pass per generator update, none extra for the D fake batch."""
    config = with_settings(CONFIG, generator_steps=generator_steps)
    gan = DCGAN(config, tf.distribute.get_strategy())
    calls = []
    gan.generator.call = lambda *args, _call=gan.generator.call, **kwargs: (
        calls.append(1), _call(*args, **kwargs))[1]
    gan.train_step(batch(config))  # Traced once: one Python call per forward pass.
    assert len(calls) == generator_steps


def test_optimizers_are_adam_2e4_beta_0_5_one_per_network():
    gan = DCGAN(CONFIG, tf.distribute.get_strategy())
    for optimizer in (gan.g_optimizer, gan.d_optimizer):
        assert type(optimizer).__name__ == "Adam"
        assert float(optimizer.learning_rate.numpy()) == pytest.approx(2e-4)
        assert optimizer.beta_1 == 0.5
    assert gan.g_optimizer is not gan.d_optimizer


@pytest.mark.parametrize("real_target, fake_target", [(0.9, 0.0), (0.7, 0.2), (1.0, 0.0)])
def test_the_train_step_uses_the_configured_targets(real_target, fake_target):
    """The step's reported losses against an independent computation with the configured
    targets: D on real -> real_target, D on fake -> fake_target, G -> 1. Learning rate 0 keeps
    the weights fixed, so every loss in the step sees the same networks."""
    config = with_settings(CONFIG, real_target=real_target, fake_target=fake_target,
                           learning_rate=0.0, generator_steps=1)
    gan = DCGAN(config, tf.distribute.get_strategy())
    b = batch(config)
    d, g = gan.discriminator, gan.generator
    fake_logits = d(g(b[Z][:, 0], training=True), training=True)

    def loss(logits, target):
        return float(tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
            labels=tf.fill(tf.shape(logits), target), logits=logits)))

    expected_d = loss(d(b[REAL], training=True), real_target) + loss(fake_logits, fake_target)
    metrics = gan.train_step(b)
    assert float(metrics["d_loss"]) == pytest.approx(expected_d, rel=1e-5)
    assert float(metrics["g_loss"]) == pytest.approx(loss(fake_logits, 1.0), rel=1e-5)


@functools.cache
def mirrored_strategy() -> tf.distribute.MirroredStrategy:
    """One strategy over the 2 logical CPUs for the whole process: each new MirroredStrategy
    numbers its collectives from the same keys, and TensorFlow keeps the first shapes it saw
    under a key (a second strategy's different step fails with a collective shape mismatch)."""
    return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])


# The discriminator's regularisers change the step: each must keep these equivalences (R1
# backpropagates through the input gradient, spectral normalisation assigns its kernels, the
# latent code's real cluster term all-reduces its mean prediction).
REGULARISERS = [{}, {"discriminator_normalization": "spectral"}, {"r1_weight": 1.0},
                {"latent_categories": 10, "real_cluster_weight": 1.0, "channels": 3,
                 "code_head_filters": (4, 8)},
                {"latent_categories": 10, "real_cluster_weight": 1.0}, {"pack": 2},
                {"minibatch_stddev": True}]


@pytest.mark.parametrize("regulariser", REGULARISERS)
def test_mirrored_two_replicas_match_one_device_for_a_full_step(regulariser):
    """D real, D fake and both G updates on 2 logical CPUs == one device, same global batch.

    Adam's first update is lr * g / (|g| + epsilon): about +-lr for any gradient
    much larger than epsilon, so with the default epsilon a near-zero gradient
    whose sign depends on the order of the replica sum flips a weight by 2 lr.
    A large epsilon makes the update proportional to the gradient, so float
    tolerance applies to every weight.
    """
    config = with_settings(CONFIG, sync_batch_norm=True, adam_epsilon=1.0,
                           learning_rate=0.05, **regulariser)
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(devices) == 2, devices
    single = DCGAN(config, tf.distribute.OneDeviceStrategy(devices[0]))
    mirrored = DCGAN(config, mirrored_strategy())
    assert mirrored.strategy.num_replicas_in_sync == 2
    for target, source in ((mirrored.generator, single.generator),
                           (mirrored.discriminator, single.discriminator)):
        target.set_weights(source.get_weights())
    global_batch = batch(config, seed=3)
    initial = weights(single)

    def one_step(gan):
        dataset = tf.data.Dataset.from_tensors(global_batch)
        return gan.train_step(next(iter(gan.strategy.experimental_distribute_dataset(dataset))))

    single_metrics, mirrored_metrics = one_step(single), one_step(mirrored)
    for name in single_metrics:
        assert float(mirrored_metrics[name]) == pytest.approx(float(single_metrics[name]),
                                                              rel=1e-4, abs=1e-5), name
    for expected, actual in zip(weights(single), weights(mirrored)):
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)
    # Both replicas' copies of every variable stayed identical.
    for variable in mirrored.generator.weights + mirrored.discriminator.weights:
        first, second = (np.array(copy) for copy in variable.value.values)
        np.testing.assert_array_equal(first, second, err_msg=variable.path)
    # The step moved the weights: the comparison is not between two untouched models.
    changed = [not np.allclose(a, b) for a, b in zip(initial, weights(single))]
    assert sum(changed) > len(changed) // 2


@pytest.mark.parametrize("regulariser", REGULARISERS)
def test_forward_conv_filter_gradients_match_native_ones_for_a_full_step(regulariser):
    """D real, D fake and both G updates: the same weights after a step either way (with R1,
    the forward convolution's custom gradient is differentiated again).

    A large Adam epsilon makes the update proportional to the gradient (see the
    MirroredStrategy test), so float tolerance applies to every weight.
    """
    config = with_settings(CONFIG, adam_epsilon=1.0, learning_rate=0.05, **regulariser)
    native = DCGAN(with_settings(config, filter_gradient="native"),
                   tf.distribute.get_strategy())
    ours = DCGAN(with_settings(config, filter_gradient="forward_conv"),
                 tf.distribute.get_strategy())
    ours.generator.set_weights(native.generator.get_weights())
    ours.discriminator.set_weights(native.discriminator.get_weights())
    initial = weights(native)
    native.train_step(batch(config))
    ours.train_step(batch(config))
    for expected, actual in zip(weights(native), weights(ours)):
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)
    assert sum(not np.allclose(a, b) for a, b in zip(initial, weights(native))) > len(initial) // 2


@pytest.mark.parametrize("policy, compute", [("mixed_bfloat16", "bfloat16"),
                                             ("mixed_float16", "float16")])
def test_mixed_precision_computes_in_half_precision_with_float32_outputs(policy, compute):
    config = with_settings(CONFIG, mixed_precision=policy)
    gan = DCGAN(config, tf.distribute.get_strategy())
    hidden = next(layer for layer in gan.generator.layers
                  if isinstance(layer, keras.layers.Conv2DTranspose))
    assert hidden.compute_dtype == compute and hidden.kernel.dtype == "float32"
    # BatchNorm and activations: float32 under bfloat16 (CPUs lack bfloat16 element-wise
    # arithmetic), float16 under mixed_float16.
    elementwise = "float32" if compute == "bfloat16" else compute
    for layer in gan.discriminator.layers + gan.generator.layers:
        if isinstance(layer, (keras.layers.BatchNormalization, keras.layers.LeakyReLU,
                              keras.layers.ReLU)):
            assert layer.compute_dtype == elementwise, layer.name
    assert gan.generator.output.dtype == "float32" and gan.discriminator.output.dtype == "float32"
    uses_loss_scale = type(gan.g_optimizer).__name__ == "LossScaleOptimizer"
    assert uses_loss_scale == (policy == "mixed_float16")
    before = [np.array(v) for v in gan.generator.trainable_weights]
    metrics = gan.train_step(batch(config))
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert any(not np.allclose(a, np.array(b)) for a, b in zip(before, gan.generator.trainable_weights))


@pytest.mark.parametrize("gpus", [0, 2])
def test_strategies_by_name_on_a_host_with_or_without_gpus(monkeypatch, gpus):
    """Device detection patched: the same assertions hold on a GPU host and on a CPU."""
    from trainer import strategy as strategy_lib
    devices = [tf.config.LogicalDevice(f"/device:GPU:{i}", "GPU") for i in range(gpus)]
    monkeypatch.setattr(tf.config, "list_logical_devices",
                        lambda kind=None: devices if kind == "GPU" else [])
    made = []
    monkeypatch.setattr(tf.distribute, "MirroredStrategy",
                        lambda *args: made.append(("mirrored", args)) or "mirrored")
    monkeypatch.setattr(tf.distribute, "OneDeviceStrategy",
                        lambda device: made.append(("one_device", device)) or "one_device")
    assert strategy_lib.make_strategy("auto") == ("mirrored" if gpus else
                                                  tf.distribute.get_strategy())
    assert strategy_lib.make_strategy("mirrored") == "mirrored"
    assert strategy_lib.make_strategy("one_device") == "one_device"
    assert made[-1] == ("one_device", "/device:GPU:0" if gpus else "/cpu:0")


def test_the_tpu_strategy_without_a_tpu_says_so(monkeypatch):
    from trainer.strategy import make_strategy

    def no_tpu(*args, **kwargs):
        raise ValueError("Please provide a TPU Name to connect to.")

    monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver", no_tpu)
    with pytest.raises(ValueError, match="strategy 'tpu': no TPU found .*TPU Name"):
        make_strategy("tpu")


def test_only_the_chief_writes():
    from trainer.strategy import is_chief

    class Resolver:
        def __init__(self, cluster, task_type, task_id):
            self.cluster, self.task_type, self.task_id = cluster, task_type, task_id

        def cluster_spec(self):
            return tf.train.ClusterSpec(self.cluster)

    class Strategy:
        def __init__(self, resolver):
            self.cluster_resolver = resolver

    workers = {"worker": ["localhost:1", "localhost:2"]}
    assert is_chief(tf.distribute.get_strategy())
    assert is_chief(Strategy(Resolver(workers, "worker", 0)))
    assert not is_chief(Strategy(Resolver(workers, "worker", 1)))
    with_chief = {"chief": ["localhost:3"], **workers}
    assert is_chief(Strategy(Resolver(with_chief, "chief", 0)))
    assert not is_chief(Strategy(Resolver(with_chief, "worker", 0)))


def test_the_seed_fixes_the_initial_weights_and_so_the_run():
    """Same config: the same initial weights and the same step results (runs repeat exactly);
    another seed: other weights."""
    first, again = (DCGAN(CONFIG, tf.distribute.get_strategy()) for _ in range(2))
    for a, b in zip(weights(first), weights(again)):
        np.testing.assert_array_equal(a, b)
    b = batch(CONFIG)
    assert {k: float(v) for k, v in first.train_step(b).items()} == \
        {k: float(v) for k, v in again.train_step(b).items()}
    other = DCGAN(with_settings(CONFIG, seed=1), tf.distribute.get_strategy())
    assert any(not np.array_equal(a, c) for a, c in zip(weights(again), weights(other)))


def test_pack_judges_each_m_consecutive_samples_as_one():
    """PacGAN: samples 2k and 2k + 1 become one input of twice the channels, one logit."""
    images = np.random.default_rng(0).standard_normal((6, 28, 28, 3)).astype(np.float32)
    packed = Pack(2)(images).numpy()
    assert packed.shape == (3, 28, 28, 6)
    for k in range(3):
        np.testing.assert_array_equal(packed[k, ..., :3], images[2 * k])
        np.testing.assert_array_equal(packed[k, ..., 3:], images[2 * k + 1])
    config = with_settings(CONFIG, pack=2)
    gan = DCGAN(config, tf.distribute.get_strategy())
    assert gan.discriminator(images[..., :1]).shape == (3, 1)
    metrics = gan.train_step(batch(config))
    assert 0 < float(metrics["d_real"]) < 1 and 0 < float(metrics["d_fake"]) < 1
    with pytest.raises(ValueError, match="batch_size 8 must be a multiple of pack 3"):
        with_settings(CONFIG, pack=3)
    with pytest.raises(ValueError, match="not with a label or a latent code"):
        with_settings(CONFIG, pack=2, conditional=True)


def test_minibatch_stddev_appends_the_batchs_spread_as_one_channel():
    maps = np.random.default_rng(1).standard_normal((5, 7, 7, 4)).astype(np.float32)
    out = MinibatchStddev()(maps).numpy()
    np.testing.assert_array_equal(out[..., :4], maps)
    np.testing.assert_allclose(out[..., 4], np.sqrt(maps.var(0) + 1e-8).mean(), rtol=1e-5)
    assert MinibatchStddev()(np.repeat(maps[:1], 5, 0)).numpy()[..., 4].max() < 1e-3  # Collapse.
