"""The sample-quality metrics against known answers."""

import numpy as np
import pytest
from scipy import linalg

from dcgan_common import quality_metrics as qm


def gaussian(mean, cov, n, seed):
    return np.random.default_rng(seed).multivariate_normal(mean, cov, n)


def test_fid_is_zero_for_identical_sets():
    x = gaussian(np.zeros(4), np.eye(4), 2000, 0)
    assert qm.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)


def test_fid_matches_the_closed_form_for_two_gaussians():
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.5])
    cov1 = np.diag([1.0, 2.0, 0.5])
    cov2 = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 1.5]])
    expected = (np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2)
                - 2 * np.trace(linalg.sqrtm(cov1 @ cov2).real))
    a, b = gaussian(mu1, cov1, 200_000, 1), gaussian(mu2, cov2, 200_000, 2)
    assert qm.frechet_distance(a, b) == pytest.approx(expected, rel=0.02)
    # Pure mean shift with equal covariances: FID = |mu1 - mu2|^2.
    shifted = gaussian(mu1, cov1, 200_000, 3) + mu2
    assert qm.frechet_distance(a, shifted) == pytest.approx(np.sum(mu2 ** 2), rel=0.02)


def test_fid_survives_singular_covariances():
    x = np.zeros((500, 5))
    x[:, 0] = np.random.default_rng(0).normal(size=500)  # Rank 1.
    assert np.isfinite(qm.frechet_distance(x, x + 0.1))


def test_kid_near_zero_for_one_distribution_and_positive_for_shifted():
    a, b = gaussian(np.zeros(8), np.eye(8), 3000, 0), gaussian(np.zeros(8), np.eye(8), 3000, 1)
    same_mean, same_std = qm.kernel_inception_distance(a, b, subset_size=500)
    assert abs(same_mean) < 3 * same_std + 1e-3
    shifted_mean, _ = qm.kernel_inception_distance(a, b + 1.0, subset_size=500)
    assert shifted_mean > 0.1 and shifted_mean > 20 * abs(same_mean)


def test_mnist_score_is_10_for_confident_uniform_and_1_for_one_class():
    confident = np.eye(10)[np.arange(1000) % 10]
    assert qm.mnist_score(confident) == pytest.approx(10.0, rel=1e-6)
    assert qm.mnist_score(np.eye(10)[np.full(1000, 3)]) == pytest.approx(1.0, rel=1e-6)
    assert qm.mnist_score(np.full((100, 10), 0.1)) == pytest.approx(1.0, rel=1e-6)


def test_class_histogram():
    hist = qm.class_histogram(np.array([0] * 50 + [1] * 30 + [2] * 20))
    assert hist["classes_covered"] == 3
    assert hist["max_class_share"] == 0.5 and hist["min_class_share"] == 0.0
    uniform = qm.class_histogram(np.arange(1000) % 10)
    assert uniform["kl_to_uniform"] == pytest.approx(0.0, abs=1e-12)
    assert qm.class_histogram(np.zeros(10, int))["kl_to_uniform"] == pytest.approx(np.log(10))


def test_precision_recall_density_coverage_on_constructed_sets():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(600, 2))
    same = qm.manifold_metrics(real, rng.normal(size=(600, 2)))
    assert same["precision"] > 0.9 and same["recall"] > 0.9 and same["coverage"] > 0.9
    assert 0.7 < same["density"] < 1.3
    # Fakes collapsed onto one real point: precise but no recall or coverage.
    collapsed = qm.manifold_metrics(real, np.repeat(real[:1], 600, 0) + 1e-4)
    assert collapsed["precision"] == 1.0 and collapsed["recall"] < 0.05
    assert collapsed["coverage"] < 0.05
    # Fakes far away: nothing is precise.
    far = qm.manifold_metrics(real, rng.normal(size=(600, 2)) + 50)
    assert far["precision"] == 0.0 and far["density"] == 0.0 and far["coverage"] == 0.0


def test_conditional_accuracy_and_per_class_fid_on_constructed_predictions():
    rng = np.random.default_rng(0)
    requested = np.arange(1000) % 10
    probabilities = np.eye(10)[requested]
    asked_for_7 = requested == 7
    probabilities[asked_for_7] = np.eye(10)[1]  # Every 7 drawn as a 1: 100 wrong digits.
    real_labels = np.arange(2000) % 10
    real = rng.normal(size=(2000, 3)) + real_labels[:, None]
    fake = rng.normal(size=(1000, 3)) + requested[:, None]
    fake[requested == 4] += 5.0  # Class 4 drawn badly.
    result = qm.conditional_metrics(real, real_labels, fake, probabilities, requested)
    assert result["conditional_accuracy"] == pytest.approx(0.9)
    assert result["per_class_accuracy"] == [1.0] * 7 + [0.0] + [1.0] * 2
    fids = result["per_class_fid"]
    assert len(fids) == 10 and fids[4] > 50 and max(f for i, f in enumerate(fids) if i != 4) < 1


@pytest.mark.parametrize("call, message", [
    (lambda: qm.frechet_distance(np.zeros((10, 4)), np.zeros((10, 5))),
     "differ in dimension"),
    (lambda: qm.frechet_distance(np.zeros((1, 4)), np.zeros((10, 4))),
     r"features_a: expected features \[N >= 2, D\]"),
    (lambda: qm.kernel_inception_distance(np.full((10, 4), np.nan),
                                                       np.zeros((10, 4))), "NaN"),
    (lambda: qm.mnist_score(np.full((5, 10), 0.2)), "summing to 1"),
    (lambda: qm.mnist_score(np.full((5, 9), 1 / 9)), r"\[N >= 1, 10\]"),
    (lambda: qm.class_histogram(np.array([0, 10])), "predicted classes in 0-9"),
    (lambda: qm.manifold_metrics(np.zeros((5, 2)), np.zeros((9, 2))),
     "more than k=5"),
])
def test_bad_inputs_are_refused_with_what_is_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call()
