"""Sample-quality metrics computed on classifier features and predictions (numpy, float64).

On MNIST, ImageNet-Inception features say nothing about digits, so FID, KID
and the precision/recall family are computed in the feature space of an MNIST
classifier (its penultimate layer, 128 units: dcgan_common/embedding.py), and the
"MNIST score" is the Inception score computed with that classifier's class
probabilities. Every function checks its inputs' shapes and raises ValueError.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import linalg

from dcgan_common.datasets import mode_of
from dcgan_common.features import NUM_CLASSES

# A classifier's top probability from which a channel counts as a legible digit (coverage).
CONFIDENT_PROBABILITY = 0.9
# The k-nearest-neighbour metrics' sample bound per set: 10,000 x 10,000 distances, 400 MB.
MANIFOLD_SAMPLES = 10_000


def _check_features(**sets: np.ndarray) -> None:
    """Every set 2-D [N, D] with the same D, finite, and N >= 2 (a covariance needs two)."""
    dims = set()
    for name, values in sets.items():
        if values.ndim != 2 or len(values) < 2:
            raise ValueError(f"{name}: expected features [N >= 2, D], got shape {values.shape}")
        if not np.isfinite(values).all():
            raise ValueError(f"{name}: features contain NaN or infinite values")
        dims.add(values.shape[1])
    if len(dims) > 1:
        raise ValueError(f"feature sets differ in dimension: {sorted(dims)}")


def _check_probabilities(probabilities: np.ndarray) -> None:
    """[N, NUM_CLASSES] rows of non-negative numbers summing to 1 (a softmax output)."""
    if probabilities.ndim != 2 or probabilities.shape[1] != NUM_CLASSES or not len(probabilities):
        raise ValueError(f"expected class probabilities [N >= 1, {NUM_CLASSES}], "
                         f"got shape {probabilities.shape}")
    if (probabilities < 0).any() or not np.allclose(probabilities.sum(1), 1.0, atol=1e-4):
        raise ValueError("class probabilities must be non-negative rows summing to 1")


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets: FID (Heusel et al. 2017,
    "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium").

    Args:
      features_a, features_b: [N_a, D] and [N_b, D] features (here the classifier's
        penultimate layer, D = 128), N >= 2 each.
      eps: diagonal offset tried when the covariance product is near singular.
    Returns:
      ||mu_a - mu_b||^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2)) >= 0, in squared feature units;
      0 for identical distributions. Biased for finite N: compare values of equal N.
    """
    _check_features(features_a=features_a, features_b=features_b)
    mu_a, mu_b = features_a.mean(0), features_b.mean(0)
    cov_a = np.cov(features_a, rowvar=False)
    cov_b = np.cov(features_b, rowvar=False)
    covmean, _ = linalg.sqrtm(cov_a @ cov_b, disp=False)
    if not np.isfinite(covmean).all():
        # Near-singular product: regularize both covariances a little.
        offset = np.eye(cov_a.shape[0]) * eps
        covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"sqrtm gave a large imaginary part {np.abs(covmean.imag).max():.3g}")
        covmean = covmean.real
    diff = mu_a - mu_b
    return float(max(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean), 0.0))


def kernel_inception_distance(features_a: np.ndarray, features_b: np.ndarray,
                              subsets: int = 10, subset_size: int = 1000,
                              seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs"): the unbiased
    estimate of MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / D + 1)^3.

    Args:
      features_a, features_b: [N_a, D] and [N_b, D] features.
      subsets, subset_size: the estimate is averaged over `subsets` random subsets of
        min(subset_size, N_a, N_b) samples from each set (without replacement), drawn with `seed`.
    Returns:
      (mean, std) over the subsets; unbiased, so about 0 (possibly negative) for one
      distribution whatever N.
    """
    _check_features(features_a=features_a, features_b=features_b)
    rng = np.random.default_rng(seed)
    size = min(subset_size, len(features_a), len(features_b))
    dim = features_a.shape[1]
    values = []
    for _ in range(subsets):
        x = features_a[rng.choice(len(features_a), size, replace=False)]
        y = features_b[rng.choice(len(features_b), size, replace=False)]
        k_xx = (x @ x.T / dim + 1) ** 3
        k_yy = (y @ y.T / dim + 1) ** 3
        k_xy = (x @ y.T / dim + 1) ** 3
        off_diagonal = size * (size - 1)
        values.append((k_xx.sum() - np.trace(k_xx)) / off_diagonal
                      + (k_yy.sum() - np.trace(k_yy)) / off_diagonal - 2 * k_xy.mean())
    return float(np.mean(values)), float(np.std(values))


def mnist_score(probabilities: np.ndarray, eps: float = 1e-12) -> float:
    """The Inception score (Salimans et al. 2016, "Improved Techniques for Training GANs")
    computed with the MNIST classifier: exp(E_x KL(p(y|x) || p(y))).

    Args:
      probabilities: [N, 10] class probabilities p(y|x) of N samples (rows sum to 1).
    Returns:
      A number in [1, 10]: 10 when every sample is classified with certainty and the classes
      are uniform, 1 when all samples get the same distribution. Real MNIST scores ~9.7.
    """
    _check_probabilities(probabilities)
    marginal = probabilities.mean(0, keepdims=True)
    kl = (probabilities * (np.log(probabilities + eps) - np.log(marginal + eps))).sum(1)
    return float(np.exp(kl.mean()))


def class_histogram(predicted: np.ndarray) -> dict[str, object]:
    """Mode coverage from the predicted classes.

    Args:
      predicted: [N] integer class predictions in 0-9.
    Returns:
      class_shares (10 fractions summing to 1), classes_covered (how many are > 0),
      min/max_class_share, and kl_to_uniform = KL(shares || uniform) in nats (0 when balanced,
      log 10 = 2.30 for one class).
    """
    if predicted.ndim != 1 or not len(predicted) or predicted.min() < 0 or \
            predicted.max() >= NUM_CLASSES:
        raise ValueError(f"expected [N >= 1] predicted classes in 0-{NUM_CLASSES - 1}")
    shares = np.bincount(predicted, minlength=NUM_CLASSES) / len(predicted)
    nonzero = shares[shares > 0]
    return {
        "class_shares": [round(float(s), 6) for s in shares],
        "classes_covered": int((shares > 0).sum()),
        "min_class_share": float(shares.min()),
        "max_class_share": float(shares.max()),
        "kl_to_uniform": float((nonzero * np.log(nonzero * NUM_CLASSES)).sum()),
    }


def _pairwise_distances(a: np.ndarray, b: np.ndarray, chunk: int = 2048) -> np.ndarray:
    out = np.empty((len(a), len(b)), np.float32)
    b_sq = (b * b).sum(1)
    for start in range(0, len(a), chunk):
        part = a[start:start + chunk]
        squared = (part * part).sum(1)[:, None] + b_sq[None, :] - 2 * part @ b.T
        out[start:start + chunk] = np.sqrt(np.maximum(squared, 0))
    return out


def _knn_radii(features: np.ndarray, k: int) -> np.ndarray:
    distances = _pairwise_distances(features, features)
    return np.partition(distances, k, axis=1)[:, k]  # Index 0 is the point itself.


def manifold_metrics(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict[str, float]:
    """Fidelity and diversity from k-nearest-neighbour balls in feature space.

    Precision and recall (Kynkaanniemi et al. 2019, "Improved Precision and Recall Metric for
    Assessing Generative Models"): the share of fakes inside some real sample's ball (its
    distance to its k-th nearest real neighbour), and of reals inside some fake's ball.
    Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for
    Generative Models"): how many real balls contain a fake, on average, divided by k; and the
    share of real balls that contain at least one fake.

    Args:
      real, fake: [N_r, D] and [N_f, D] features, N > k each.
      k: the neighbour that sets a ball's radius (5, as in both papers).
    Returns:
      precision, recall, coverage in [0, 1]; density >= 0 (about 1 for matching
      distributions). O(N^2) memory in float32 (10,000 x 10,000: 400 MB).
    """
    _check_features(real=real, fake=fake)
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"manifold metrics need more than k={k} samples per set")
    real_radii, fake_radii = _knn_radii(real, k), _knn_radii(fake, k)
    real_fake = _pairwise_distances(real, fake)  # [real, fake]
    inside_real = real_fake < real_radii[:, None]  # fake j inside real i's ball
    return {
        "precision": float(inside_real.any(0).mean()),
        "recall": float((real_fake < fake_radii[None, :]).any(1).mean()),
        "density": float(inside_real.sum(0).mean() / k),
        "coverage": float((real_fake.min(1) < real_radii).mean()),
    }


def all_metrics(real_features: np.ndarray, fake_features: np.ndarray,
                fake_probabilities: np.ndarray, seed: int = 0) -> dict[str, object]:
    """Every metric above of one generated set against the real eval images.

    Args:
      real_features: [N_r, D] features of real eval images.
      fake_features, fake_probabilities: [N_f, D] features and [N_f, 10] class probabilities
        of the generated samples.
      seed: KID's subset sampling.
    """
    kid_mean, kid_std = kernel_inception_distance(real_features, fake_features, seed=seed)
    return {
        "fid": frechet_distance(real_features, fake_features),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "mnist_score": mnist_score(fake_probabilities),
        **class_histogram(fake_probabilities.argmax(1)),
        # O(N^2) memory: at most MANIFOLD_SAMPLES of each set (Stacked MNIST pools 78,000).
        **manifold_metrics(real_features[:MANIFOLD_SAMPLES], fake_features[:MANIFOLD_SAMPLES]),
    }


def conditional_metrics(real_features: np.ndarray, real_labels: np.ndarray,
                        fake_features: np.ndarray, fake_probabilities: np.ndarray,
                        requested: np.ndarray) -> dict[str, object]:
    """A conditional generator: does it draw the digit asked for, and how well per class?

    Args:
      real_features, real_labels: [N_r, D] features and [N_r] labels of real eval images.
      fake_features, fake_probabilities: [N_f, D] and [N_f, 10] of the generated samples.
      requested: [N_f] the digit each sample was generated for.
    Returns:
      conditional_accuracy (the classifier's agreement with `requested`, in [0, 1]), and per
      digit: per_class_accuracy and per_class_fid (FID against the real images of that digit;
      NaN where a digit has fewer than 2 samples on either side).
    """
    _check_probabilities(fake_probabilities)
    if not (len(fake_features) == len(fake_probabilities) == len(requested)) or \
            len(real_features) != len(real_labels):
        raise ValueError("features, probabilities and labels must have one row per sample")
    correct = fake_probabilities.argmax(1) == requested
    per_class_fid, per_class_accuracy = [], []
    for digit in range(NUM_CLASSES):
        asked = requested == digit
        real, fake = real_features[real_labels == digit], fake_features[asked]
        per_class_fid.append(frechet_distance(real, fake) if min(len(real), len(fake)) > 1
                             else float("nan"))
        per_class_accuracy.append(float(correct[asked].mean()) if asked.any() else float("nan"))
    return {
        "conditional_accuracy": float(correct.mean()),
        "per_class_accuracy": [round(v, 6) for v in per_class_accuracy],
        "per_class_fid": [round(v, 6) for v in per_class_fid],
    }


def mode_coverage(channel_probabilities: np.ndarray,
                  confident: float = CONFIDENT_PROBABILITY) -> dict[str, object]:
    """Stacked MNIST's coverage (VEEGAN, PacGAN): each channel labelled by the classifier, the
    sample's mode the triple of labels.

    Args:
      channel_probabilities: [N, C, 10] class probabilities of each sample's C channels.
      confident: a channel counts as a confident digit when its top probability reaches this.
    Returns:
      modes_covered (distinct modes among the N samples, of 10^C), mode_kl = KL(the samples'
      mode distribution || uniform over 10^C) in nats (0 when even; log 10^C for one mode),
      confident_share (samples whose every channel is a confident digit), and mode_counts
      (samples per mode, mode index = the digits read as one number, channel 0 first).
      mode_kl splits exactly into channel_kl (each channel's KL(digit distribution || uniform
      over 10): digits drawn unevenly) plus mode_dependence (the channels' total correlation:
      digits that go together), which says what to fix; sampling alone leaves about
      (10^C - 1 - 9C) / 2N of dependence and 9 / 2N per channel.
    """
    if channel_probabilities.ndim != 3 or not len(channel_probabilities):
        raise ValueError(f"expected channel probabilities [N >= 1, C, {NUM_CLASSES}], got "
                         f"shape {channel_probabilities.shape}")
    _check_probabilities(channel_probabilities.reshape(-1, channel_probabilities.shape[-1]))
    channels = channel_probabilities.shape[1]
    num_modes = NUM_CLASSES ** channels
    modes = mode_of(channel_probabilities.argmax(-1))
    counts = np.bincount(modes, minlength=num_modes)
    return {
        "modes_covered": int((counts > 0).sum()),
        "num_modes": num_modes,
        **mode_kl_split(counts),
        "confident_share": float((channel_probabilities.max(-1) >= confident).all(1).mean()),
        "mode_counts": counts.tolist(),
    }


def mode_kl_split(mode_counts) -> dict[str, object]:
    """mode_kl of samples per mode (10^C counts, channel 0 the leading digit), and its exact
    split: channel_kl per channel plus mode_dependence (mode_coverage says what they mean)."""
    counts = np.asarray(mode_counts)
    channels = round(math.log10(counts.size))
    if counts.ndim != 1 or NUM_CLASSES ** channels != counts.size or counts.sum() <= 0:
        raise ValueError(f"expected a positive count for each of 10^C modes, got "
                         f"{counts.size} counts summing to {counts.sum()}")
    mode_kl = _kl_to_uniform(counts)
    joint = counts.reshape((NUM_CLASSES,) * channels)
    channel_kl = [_kl_to_uniform(joint.sum(axis=tuple(a for a in range(channels) if a != c)))
                  for c in range(channels)]
    # >= 0 (a total correlation); max() only absorbs float rounding.
    return {"mode_kl": mode_kl, "channel_kl": channel_kl,
            "mode_dependence": max(mode_kl - sum(channel_kl), 0.0)}


def _kl_to_uniform(counts: np.ndarray) -> float:
    """KL(counts / total || uniform over len(counts)) in nats."""
    shares = counts[counts > 0] / counts.sum()
    return float((shares * np.log(shares * counts.size)).sum())


def sample_metrics(real_features: np.ndarray, fake_features: np.ndarray,
                   fake_probabilities: np.ndarray, seed: int = 0) -> dict[str, object]:
    """Every metric of one generated set against real images, channel by channel.

    Args:
      real_features: [C, N_r, D] classifier features of each channel of the real images.
      fake_features, fake_probabilities: [C, N_f, D] and [C, N_f, 10], the generated ones.
    Returns:
      all_metrics over the channels' digits pooled (for MNIST, C = 1: the digits); with more
      than one channel also fid_per_channel and mode_coverage's modes and KL.
    """
    channels, _, dim = real_features.shape
    metrics = all_metrics(real_features.reshape(-1, dim), fake_features.reshape(-1, dim),
                          fake_probabilities.reshape(-1, NUM_CLASSES), seed)
    if channels > 1:
        metrics["fid_per_channel"] = [frechet_distance(real_features[c], fake_features[c])
                                      for c in range(channels)]
        metrics.update(mode_coverage(np.moveaxis(fake_probabilities, 0, 1)))
    return metrics
