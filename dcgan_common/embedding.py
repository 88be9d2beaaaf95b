"""The evaluation classifier as the metrics use it: its exported `embed` signature gives
features (the penultimate layer, the space of FID, KID and precision/recall) and class
probabilities (the MNIST score and the class histogram)."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from dcgan_common.examples import split_channels

EMBED_BATCH = 1000


def embed(embed_fn, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(features, class probabilities) for float images in [-1, 1], in batches."""
    feats, probs = [], []
    for start in range(0, len(images), EMBED_BATCH):
        out = embed_fn(images=tf.constant(images[start:start + EMBED_BATCH], tf.float32))
        feats.append(out["features"].numpy().astype(np.float64))
        probs.append(tf.nn.softmax(out["logits"]).numpy().astype(np.float64))
    return np.concatenate(feats), np.concatenate(probs)


def load_embed_fn(model_uri: str):
    return tf.saved_model.load(os.path.join(model_uri, "Format-Serving")).signatures["embed"]


def embed_channels(embed_fn, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each channel of [N, 28, 28, C] images embedded as a single digit: features [C, N, D] and
    class probabilities [C, N, 10]. C is 1 for MNIST."""
    pairs = [embed(embed_fn, channel) for channel in split_channels(images)]
    return np.stack([f for f, _ in pairs]), np.stack([p for _, p in pairs])
