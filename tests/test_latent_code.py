"""The unsupervised categorical latent code (InfoGAN's, drawn from z): uniform categories, the
generator's one-hot input, the discriminator's head, the code term of both losses, the head's
clustering term on real images and its shift consistency, serving."""


import numpy as np
import pytest
import tensorflow as tf


from dcgan_common.features import REAL, Z
from dcgan_common.images import to_uint8
from trainer.export import export_generator, float32_copy
from trainer.gan import DCGAN
from trainer.terms.clustering import SHIFT_VIEW, shifted
from trainer.models import CategoricalCode, build_discriminator, build_generator, category_of
from test_gan import batch
from settings import trainer_config, with_settings

CONFIG = trainer_config(generator_filters=(16, 8), discriminator_filters=(8, 16), batch_size=8,
                        mixed_precision="float32", latent_categories=10)
# Stacked MNIST's code: one per channel, read by a head of its own from each channel alone.
PER_CHANNEL = with_settings(CONFIG, channels=3, code_head_filters=(4, 8))
# The terms' values are checked for both heads.
HEADS = pytest.mark.parametrize("base", [CONFIG, PER_CHANNEL], ids=["one_code", "per_channel"])


def head_kernel(gan: DCGAN) -> tf.Variable:
    return gan.discriminator.get_layer("category_logits").kernel


def channel_log_softmax(logits, config) -> np.ndarray:
    """The head's [N, C * K] logits as [N, C, K] log-probabilities, in float64."""
    grouped = np.asarray(logits, np.float64).reshape(
        -1, config.model.channels, config.model.latent_categories)
    grouped = grouped - grouped.max(axis=2, keepdims=True)
    return grouped - np.log(np.exp(grouped).sum(axis=2, keepdims=True))


def test_the_category_of_standard_normal_noise_is_uniform():
    z = tf.random.stateless_normal([100_000, 100], seed=[0, 7])
    coded = CategoricalCode(10)(z).numpy()
    np.testing.assert_array_equal(coded[:, :100], z.numpy())
    onehot = coded[:, 100:]
    assert set(np.unique(onehot)) == {0.0, 1.0} and (onehot.sum(axis=1) == 1).all()
    np.testing.assert_array_equal(onehot.argmax(axis=1), z.numpy()[:, :10].argmax(axis=1))
    shares = onehot.mean(axis=0)
    assert shares == pytest.approx(np.full(10, 0.1), abs=0.005)  # 100,000 draws: sd 0.001.


def test_the_generator_reads_the_code_and_the_discriminator_has_a_head_for_it():
    generator, discriminator = build_generator(CONFIG), build_discriminator(CONFIG)
    assert generator.input_shape == (None, 100)  # The serving signature is unchanged.
    projection = generator.get_layer(index=2)
    assert projection.kernel.shape[0] == 110  # z and the one-hot category.
    logit, categories = discriminator(tf.zeros([3, 28, 28, 1]))
    assert logit.shape == (3, 1) and categories.shape == (3, 10)
    # Two z that differ only in which of the first 10 entries is largest: other images.
    z = np.zeros([2, 100], np.float32)
    z[0, 3], z[1, 4] = 1.0, 1.0 + 1e-6
    z[0, 4], z[1, 3] = 1.0 - 1e-6, 1.0
    images = generator(z, training=False).numpy()
    assert np.abs(images[0] - images[1]).max() > 1e-3


def test_a_code_per_channel_is_drawn_from_its_own_slice_of_z_uniformly_and_independently():
    z = tf.random.stateless_normal([100_000, 100], seed=[0, 8])
    coded = CategoricalCode(10, channels=3)(z).numpy()
    assert coded.shape == (100_000, 130)
    np.testing.assert_array_equal(coded[:, :100], z.numpy())
    categories = coded[:, 100:].reshape(-1, 3, 10).argmax(axis=2)
    for channel in range(3):
        np.testing.assert_array_equal(
            categories[:, channel], z.numpy()[:, 10 * channel:10 * (channel + 1)].argmax(axis=1))
    np.testing.assert_array_equal(category_of(z, 10, 3).numpy(), categories)
    # Every pair of channels' joint categories uniform over 100 (1,000 draws a cell: sd 0.0003).
    for first, second in ((0, 1), (0, 2), (1, 2)):
        joint = np.bincount(categories[:, first] * 10 + categories[:, second], minlength=100)
        assert joint / 100_000 == pytest.approx(np.full(100, 0.01), abs=0.0015)


def test_the_per_channel_head_reads_each_channel_alone_with_the_same_weights():
    """Inference mode: changing channel 1 changes channel 1's logits only, and swapping two
    channels swaps their logits; the generator takes three one-hots beside z. On the CPU on
    every host, so two passes differ only where their inputs do (no TF32 algorithm choice)."""
    generator, discriminator = build_generator(PER_CHANNEL), build_discriminator(PER_CHANNEL)
    assert generator.input_shape == (None, 100)
    assert generator.get_layer(index=2).kernel.shape[0] == 130
    images = tf.random.stateless_uniform([4, 28, 28, 3], [0, 3], -1, 1).numpy()
    changed = images.copy()
    changed[..., 1] = -changed[..., 1]
    with tf.device("/CPU:0"):
        logit, categories = discriminator(images, training=False)
        other = discriminator(changed, training=False)[1].numpy()
        swapped = discriminator(images[..., [2, 1, 0]], training=False)[1].numpy()
    assert logit.shape == (4, 1) and categories.shape == (4, 30)
    np.testing.assert_allclose(other[:, :10], categories[:, :10], atol=1e-4)
    np.testing.assert_allclose(other[:, 20:], categories[:, 20:], atol=1e-4)
    assert np.abs(other[:, 10:20] - categories[:, 10:20]).max() > 0.05  # Logits here ~0.8.
    np.testing.assert_allclose(swapped[:, :10], categories[:, 20:], atol=1e-4)
    np.testing.assert_allclose(swapped[:, 20:], categories[:, :10], atol=1e-4)


@HEADS
def test_the_code_term_is_the_heads_cross_entropy_on_the_category_of_z(base):
    """Learning rate 0: the step's reported code_loss equals the head's softmax cross-entropy
    against each channel's argmax of its slice of z on the fake minibatch, averaged over the
    channels, computed independently."""
    config = with_settings(base, learning_rate=0.0, generator_steps=1)
    gan = DCGAN(config, tf.distribute.get_strategy())
    b = batch(config)
    z = b[Z][:, 0].numpy()
    _, category_logits = gan.discriminator(gan.generator(z, training=True), training=True)
    log_p = channel_log_softmax(category_logits, config)
    channels = config.model.channels
    categories = z[:, :10 * channels].reshape(8, channels, 10).argmax(axis=2)
    expected = -np.mean(np.take_along_axis(log_p, categories[..., None], axis=2))
    metrics = gan.train_step(b)
    assert float(metrics["code_loss"]) == pytest.approx(expected, rel=1e-5)


@HEADS
def test_training_moves_the_head_only_through_the_fake_minibatch_term(base):
    """The real minibatch's loss does not reach the head (its gradient there is None, and the
    step skips it instead of failing); with the code weight 0 the fake term's gradient is 0 and
    the head stays as initialised; with weight 1 it learns."""
    for weight, moves in ((0.0, False), (1.0, True)):
        config = with_settings(base, latent_code_weight=weight)
        gan = DCGAN(config, tf.distribute.get_strategy())
        before = head_kernel(gan).numpy().copy()
        gan.train_step(batch(config))
        assert (np.abs(head_kernel(gan).numpy() - before).max() > 0) == moves, weight


def entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(p)).sum(axis=-1)


@HEADS
def test_the_real_cluster_term_is_mean_entropy_minus_the_entropy_of_the_mean(base):
    """Learning rate 0: the reported term equals weight * (mean over the real minibatch of
    the head's prediction entropy - the entropy of the minibatch's mean prediction), each
    channel's, averaged over the channels, computed independently; it lies in
    [-log 10, log 10]."""
    config = with_settings(base, learning_rate=0.0, real_cluster_weight=0.5)
    gan = DCGAN(config, tf.distribute.get_strategy())
    b = batch(config)
    _, category_logits = gan.discriminator(b[REAL], training=True)
    p = np.exp(channel_log_softmax(category_logits, config))  # [N, C, K]
    expected = 0.5 * (entropy(p).mean() - entropy(p.mean(axis=0)).mean())
    metrics = gan.train_step(b)
    assert float(metrics["real_cluster_loss"]) == pytest.approx(expected, rel=1e-4, abs=1e-6)
    assert abs(expected) > 1e-3  # Not a term that vanishes whatever the head says.
    # Without the setting the step neither computes nor reports it.
    assert "real_cluster_loss" not in DCGAN(base, tf.distribute.get_strategy()).train_step(b)


@HEADS
def test_the_real_cluster_term_alone_trains_the_head_towards_confident_balanced_clusters(base):
    """Code weight 0 (the fake term's gradient is 0), cluster weight 1: the head moves, and
    over a few steps on one real minibatch the term falls."""
    config = with_settings(base, latent_code_weight=0.0, real_cluster_weight=1.0,
                           learning_rate=1e-3)
    gan = DCGAN(config, tf.distribute.get_strategy())
    before = head_kernel(gan).numpy().copy()
    b = batch(config)
    losses = [float(gan.train_step(b)["real_cluster_loss"]) for _ in range(10)]
    assert np.abs(head_kernel(gan).numpy() - before).max() > 0
    assert losses[-1] < losses[0] - 0.1, losses


def test_shifted_moves_each_image_by_its_own_whole_pixel_offsets_filling_in_background():
    dot = -np.ones([400, 28, 28, 1], np.float32)
    dot[:, 14, 13, 0] = 1.0
    moved = shifted(tf.constant(dot), 2, tf.constant([0, 5], tf.int64)).numpy()
    offsets = np.array([np.argwhere(image[..., 0] == 1.0)[0] - (14, 13) for image in moved])
    assert ((moved == 1.0).sum(axis=(1, 2, 3)) == 1).all() and set(np.unique(moved)) == {-1, 1}
    assert np.abs(offsets).max() == 2
    assert len({tuple(o) for o in offsets}) == 25  # Every offset in -2..2 x -2..2 occurs.
    again = shifted(tf.constant(dot), 2, tf.constant([0, 5], tf.int64)).numpy()
    np.testing.assert_array_equal(moved, again)  # Stateless: a run replays.
    # All ink: what shifts in is background, a band |dy| rows and |dx| columns wide.
    ink = shifted(tf.ones([400, 28, 28, 1]), 2, tf.constant([0, 5], tf.int64)).numpy()
    dy, dx = np.abs(offsets).T
    np.testing.assert_array_equal((ink == -1).sum(axis=(1, 2, 3)), 28 * (dy + dx) - dy * dx)


def test_shifted_moves_every_channel_of_an_image_alike():
    """Stacked MNIST: the three digits of one image move together."""
    images = tf.random.stateless_uniform([50, 28, 28, 3], [0, 9], -1, 1)
    moved = shifted(images, 2, tf.constant([0, 5], tf.int64)).numpy()
    assert moved.shape == (50, 28, 28, 3)
    for channel in range(3):  # Each channel alone is moved as a one-channel image would be.
        np.testing.assert_allclose(
            moved[..., channel:channel + 1],
            shifted(images[..., channel:channel + 1], 2, tf.constant([0, 5], tf.int64)).numpy(),
            atol=1e-6)


def test_defaults_terms_train_on_three_channel_images():
    """`default` on Stacked MNIST (`--dataset stacked_mnist`): the code and clustering terms
    run on 28x28x3 images, with a positive consistency term and a finite clustering term."""
    config = with_settings(CONFIG, channels=3, real_cluster_weight=3.0,
                           cluster_consistency_weight=1.0, latent_code_weight=0.2)
    gan = DCGAN(config, tf.distribute.get_strategy())
    b = batch(config)
    assert b[REAL].shape[-1] == 3
    losses = gan.train_step(b)
    assert float(losses["cluster_consistency_loss"]) > 0
    assert np.isfinite(float(losses["real_cluster_loss"]))


@HEADS
def test_the_consistency_term_is_the_kl_from_the_real_prediction_to_the_shifted_ones(base):
    """Learning rate 0: the reported term equals weight * mean KL(p(x) || p(shift(x))) (over
    images and channels), computed independently from the same shifts; without the setting it
    is not reported. On the CPU on every host: a GPU's TF32 convolutions could differ between
    the step and the independent pass by more than the tolerance."""
    config = with_settings(base, learning_rate=0.0, real_cluster_weight=1.0,
                           cluster_consistency_weight=2.0)
    b = batch(config)
    with tf.device("/CPU:0"):
        gan = DCGAN(config, tf.distribute.get_strategy())
        moved = shifted(b[REAL], config.objective.cluster_shift_pixels, gan.stateless_seed(SHIFT_VIEW))
        log_p, log_q = (channel_log_softmax(gan.discriminator(images, training=True)[1], config)
                        for images in (b[REAL], moved))
        metrics = gan.train_step(b)
    assert np.abs(moved.numpy() - b[REAL].numpy()).max() > 0.5
    expected = 2.0 * (np.exp(log_p) * (log_p - log_q)).sum(axis=2).mean()
    assert float(metrics["cluster_consistency_loss"]) == pytest.approx(expected, rel=1e-4)
    assert expected > 1e-4
    without = with_settings(config, cluster_consistency_weight=0.0)
    assert "cluster_consistency_loss" not in DCGAN(without, tf.distribute.get_strategy()
                                                   ).train_step(b)


@HEADS
def test_the_consistency_term_trains_the_head_towards_shift_invariance(base):
    """The term alone moving the discriminator (code and clustering terms weighted ~0): over
    steps on one real minibatch it falls."""
    config = with_settings(base, latent_code_weight=0.0, real_cluster_weight=1e-9,
                           cluster_consistency_weight=1.0, learning_rate=1e-3)
    gan = DCGAN(config, tf.distribute.get_strategy())
    b = batch(config)
    losses = [float(gan.train_step(b)["cluster_consistency_loss"]) for _ in range(15)]
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3]), losses


def test_a_coded_generator_is_served_with_its_code(tmp_path):
    generator = build_generator(with_settings(CONFIG, mixed_precision="mixed_bfloat16"))
    export_generator(generator, str(tmp_path / "1"))
    served = tf.saved_model.load(str(tmp_path / "1")).signatures["serving_default"]
    z = tf.random.stateless_normal([5, 100], seed=[1, 2])
    np.testing.assert_array_equal(served(z=z)["images"].numpy(),
                                  to_uint8(float32_copy(generator)(z, training=False)).numpy())


@pytest.mark.parametrize("changes, message", [
    ({"conditional": True}, "latent_categories is for unconditional generators"),
    ({"latent_categories": 101}, "latent_categories must be in 0..z_dim / channels \\(100\\), got 101"),
    ({"channels": 3, "latent_categories": 34},
     "latent_categories must be in 0..z_dim / channels \\(33\\), got 34"),
    ({"latent_categories": 0, "code_head_filters": (8, 16)},
     "code_head_filters needs latent_categories"),
    ({"code_head_filters": (8, 0)}, "code_head_filters must be >= 1 each, got \\(8, 0\\)"),
    ({"latent_code_weight": -1.0}, "latent_code_weight must be >= 0, got -1.0"),
    ({"real_cluster_weight": -1.0}, "real_cluster_weight must be >= 0, got -1.0"),
    ({"real_cluster_weight": float("nan")}, "real_cluster_weight must be >= 0, got nan"),
    ({"latent_categories": 0, "real_cluster_weight": 1.0},
     "real_cluster_weight needs latent_categories"),
    ({"cluster_consistency_weight": 1.0}, "cluster_consistency_weight needs real_cluster_weight"),
    ({"real_cluster_weight": 1.0, "cluster_consistency_weight": -1.0},
     "cluster_consistency_weight must be >= 0, got -1.0"),
    ({"cluster_shift_pixels": 0}, "cluster_shift_pixels must be in 1..13, got 0"),
    ({"cluster_shift_pixels": 14}, "cluster_shift_pixels must be in 1..13, got 14"),
])
def test_bad_code_settings_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        with_settings(CONFIG, **changes)
