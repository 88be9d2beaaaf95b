"""The datasets the pipeline trains on, all built from the MNIST digits.

`mnist`: the digits as they are, 28x28x1, label the digit. `stacked_mnist` (Srivastava et al.
2017, VEEGAN; Lin et al. 2018, PacGAN): three digits stacked as the channels of one 28x28x3
image, label the triple as one integer `100 * d0 + 10 * d1 + d2` (channel 0 first), so there are
10^3 = 1,000 equally likely modes: the benchmark of whether a GAN covers them all.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dcgan_common.features import IMAGE_PIXELS, NUM_CLASSES


@dataclasses.dataclass(frozen=True)
class Dataset:
    name: str
    # MNIST digits per image, one per channel. A stacked split has as many examples as the
    # split has digits, each drawn from them: `train` 60,000, so an epoch is as long as
    # MNIST's and each of the 1,000 triples appears about 60 times (the chance that one is
    # missing is about 1,000 e^-60, nil); `eval` 10,000.
    channels: int
    # Generated samples the Evaluator measures: MNIST's 10,000 (as many as the test digits);
    # Stacked MNIST's 26,000, the count of the published coverage results (VEEGAN, PacGAN).
    eval_samples: int = 10_000

    @property
    def modes(self) -> int:
        """Distinct labels: every combination of one digit per channel."""
        return NUM_CLASSES ** self.channels

    @property
    def image_bytes(self) -> int:
        return IMAGE_PIXELS * self.channels


DATASETS = {
    "mnist": Dataset("mnist", channels=1),
    "stacked_mnist": Dataset("stacked_mnist", channels=3, eval_samples=26_000),
}


def dataset(name: str) -> Dataset:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; the datasets are {sorted(DATASETS)}")
    return DATASETS[name]


def stack(images: np.ndarray, labels: np.ndarray, count: int, channels: int,
          seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` images of `channels` digits each, every digit drawn uniformly with replacement
    from `images` ([n, 28, 28] uint8) independently of the others, deterministically from
    `seed`: (uint8 [count, 28, 28, channels], int64 labels [count], the digits as one integer,
    channel 0 the most significant)."""
    picks = np.random.default_rng(seed).integers(0, len(images), size=(count, channels))
    stacked = np.stack([images[picks[:, c]] for c in range(channels)], axis=-1)
    return stacked, mode_of(labels[picks].astype(np.int64))


def mode_of(digits: np.ndarray) -> np.ndarray:
    """[N, channels] digits -> [N] mode index (channel 0 the most significant)."""
    weights = NUM_CLASSES ** np.arange(digits.shape[1] - 1, -1, -1)
    return digits.astype(np.int64) @ weights


def digits_of(modes: np.ndarray, channels: int) -> np.ndarray:
    """[N] mode index -> [N, channels] digits: mode_of's inverse."""
    weights = NUM_CLASSES ** np.arange(channels - 1, -1, -1)
    return (np.asarray(modes, np.int64)[:, None] // weights) % NUM_CLASSES
