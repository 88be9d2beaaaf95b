"""Sample-quality metrics computed on classifier features and predictions.

On MNIST, ImageNet-Inception features say nothing about digits, so FID, KID
and the precision/recall family are computed in the feature space of an MNIST
classifier (its penultimate layer), and the "MNIST score" is the Inception
score computed with that classifier's class probabilities.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from trainer.features import NUM_CLASSES


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray, eps: float = 1e-6) -> float:
    """FID between two feature sets (Heusel et al. 2017)."""
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
    """KID (Binkowski et al. 2018): unbiased MMD^2, cubic polynomial kernel; mean and std."""
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
    """exp(E_x KL(p(y|x) || p(y))): 10 for confident, uniform predictions, 1 for one class."""
    marginal = probabilities.mean(0, keepdims=True)
    kl = (probabilities * (np.log(probabilities + eps) - np.log(marginal + eps))).sum(1)
    return float(np.exp(kl.mean()))


def class_histogram(predicted: np.ndarray) -> dict[str, object]:
    """Shares of the predicted classes, coverage, and KL(histogram || uniform)."""
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
    """Precision/recall (Kynkaanniemi et al. 2019) and density/coverage (Naeem et al. 2020)."""
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
    """Every metric of one sample set against the real eval images."""
    kid_mean, kid_std = kernel_inception_distance(real_features, fake_features, seed=seed)
    return {
        "fid": frechet_distance(real_features, fake_features),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "mnist_score": mnist_score(fake_probabilities),
        **class_histogram(fake_probabilities.argmax(1)),
        **manifold_metrics(real_features, fake_features),
    }


def conditional_metrics(real_features: np.ndarray, real_labels: np.ndarray,
                        fake_features: np.ndarray, fake_probabilities: np.ndarray,
                        requested: np.ndarray) -> dict[str, object]:
    """A conditional generator: does it draw the digit asked for, and how well per class?"""
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
