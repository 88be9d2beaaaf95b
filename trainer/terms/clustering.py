"""The category head as a clusterer of the real images (CatGAN, Springenberg 2016; IMSAT,
Hu et al. 2017): the generator's categories, recoverable by the same head, are pulled towards
clusters of the real digits instead of any discrete split."""

from __future__ import annotations

import tensorflow as tf

from trainer.terms.base import Term, View

# The random-seed key of the shifted look at the real minibatch (trainer/gan.py keys by it).
SHIFT_VIEW = -1


def shifted(images: tf.Tensor, max_shift: int, seed: tf.Tensor) -> tf.Tensor:
    """Each image [N, H, W, C] in [-1, 1] moved by its own whole-pixel offsets in
    -max_shift..max_shift (rows and columns, stateless from `seed`; all its channels alike),
    background (-1) filling what comes in. Two one-hot shift matrices per image: matmuls, so it
    runs and differentiates on any device, XLA included."""
    size = images.shape[1]
    offsets = tf.random.stateless_uniform([2, tf.shape(images)[0]], seed, -max_shift,
                                          max_shift + 1, dtype=tf.int32)
    # rows[n, i, j] = 1 where output row i reads input row i - offset (none: zero, background).
    rows, columns = (tf.one_hot(tf.range(size)[tf.newaxis] - offset[:, tf.newaxis], size,
                                dtype=images.dtype) for offset in tf.unstack(offsets))
    # [N, C, H, W], background 0, so what shifts in is background.
    ink = tf.transpose(images, [0, 3, 1, 2]) + 1.0
    moved = tf.matmul(tf.matmul(rows[:, tf.newaxis], ink), columns[:, tf.newaxis],
                      transpose_b=True)
    return tf.transpose(moved, [0, 2, 3, 1]) - 1.0


class RealClustering(Term):
    """real_cluster_weight times (the mean entropy of the head's prediction per real image -
    the entropy of its mean over the global batch): certain of each image's category, every
    category used equally; with a code per channel, averaged over the channels.

    The mean prediction is all-reduced, so every replica holds the global batch's; each adds
    a 1/replicas share of its entropy, and the gradients summed over replicas (the
    all-reduce's gradient is an all-reduce) are the single-device ones."""

    name = "real_cluster_loss"

    def real(self, gan, view: View) -> tf.Tensor:
        log_p = self.channel_log_probabilities(view.category_logits)  # [N, C, K]
        p = tf.exp(log_p)
        conditional = self.average(-tf.reduce_mean(tf.reduce_sum(p * log_p, axis=2), axis=1))
        context = tf.distribute.get_replica_context()
        mean = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                  tf.reduce_sum(p, axis=0)) / self.config.optimizer.batch_size
        marginal = -tf.reduce_mean(tf.reduce_sum(mean * tf.math.log(mean + 1e-12), axis=1))
        return self.config.objective.real_cluster_weight * (
            conditional - marginal / context.num_replicas_in_sync)


class ShiftConsistency(Term):
    """IMSAT's self-augmentation: cluster_consistency_weight times the mean over real images
    (and channels) of KL(p(image) || p(shifted image)), p the head's prediction, the first held
    fixed. Clusters that a shift of the pen does not change follow the digit, not where it was
    drawn. Costs one more discriminator pass per step."""

    name = "cluster_consistency_loss"

    def real(self, gan, view: View) -> tf.Tensor:
        moved = shifted(view.images, self.config.objective.cluster_shift_pixels,
                        gan.stateless_seed(SHIFT_VIEW))
        _, shifted_logits = gan.critic(moved, view.labels)
        target = tf.stop_gradient(self.channel_log_probabilities(view.category_logits))
        per_channel = tf.reduce_sum(
            tf.exp(target) * (target - self.channel_log_probabilities(shifted_logits)), axis=2)
        return self.config.objective.cluster_consistency_weight * self.average(
            tf.reduce_mean(per_channel, axis=1))
