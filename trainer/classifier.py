"""The evaluation classifier (`ClassifierTrainer`, run_fn `trainer.classifier.run_fn`).

A small MNIST CNN. Its penultimate layer is the feature space of FID, KID and
precision/recall, its softmax gives the MNIST score and the class histogram.
The run also computes the real-data floor (the same metrics for real training
images against the eval images), so it is cached with the classifier.
"""

from __future__ import annotations

import json
import logging
import os

import keras
import tensorflow as tf
from tfx.components.trainer.fn_args_utils import FnArgs

from dcgan_common import features, quality_metrics
from dcgan_common.config import CLASSIFIER_CONFIG_KEY, ClassifierConfig
from dcgan_common.embedding import embed_channels
from dcgan_common.examples import load_arrays, single_digits, transformed_examples
from dcgan_common.layout import CLASSIFIER_METRICS_FILE

log = logging.getLogger(__name__)  # dcgan-pipeline shows its lines (pipeline/console.py).

FEATURES_LAYER = "features"


def build_classifier() -> keras.Model:
    images = keras.Input(features.IMAGE_SHAPE, name="images")
    x = keras.layers.Conv2D(32, 3, activation="relu")(images)
    x = keras.layers.Conv2D(64, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Dropout(0.25)(x)
    x = keras.layers.Dense(128, activation="relu", name=FEATURES_LAYER)(keras.layers.Flatten()(x))
    logits = keras.layers.Dense(features.NUM_CLASSES, name="logits")(keras.layers.Dropout(0.5)(x))
    return keras.Model(images, logits, name="mnist_classifier")


class ClassifierModule(tf.Module):
    """`embed`: images float32 [N, 28, 28, 1] in [-1, 1] -> features [N, 128], logits [N, 10]."""

    def __init__(self, classifier: keras.Model):
        super().__init__(name="mnist_classifier")
        self.embedder = keras.Model(
            classifier.inputs, [classifier.get_layer(FEATURES_LAYER).output, classifier.outputs[0]])
        self.embed = tf.function(self._embed, input_signature=[
            tf.TensorSpec([None, *features.IMAGE_SHAPE], tf.float32, name="images")])

    def _embed(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        feats, logits = self.embedder(images, training=False)
        return {"features": feats, "logits": logits}


def run_fn(fn_args: FnArgs) -> None:
    config = ClassifierConfig.from_dict(fn_args.custom_config[CLASSIFIER_CONFIG_KEY])
    keras.utils.set_random_seed(config.seed)
    # One digit per channel: the classifier reads MNIST digits, whatever the dataset stacks.
    train = (single_digits(transformed_examples(fn_args.train_files)).cache()
             .shuffle(10_000, seed=config.seed).batch(config.batch_size)
             .prefetch(tf.data.AUTOTUNE))
    evaluation = single_digits(transformed_examples(fn_args.eval_files)).batch(1000).cache()
    steps_per_epoch = int(train.reduce(0, lambda count, _: count + 1))  # Also fills the cache.
    classifier = build_classifier()
    # Cosine decay to 0: 99.09% on full MNIST after 3 epochs (98.94% at a constant 1e-3).
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate,
                                                      config.epochs * steps_per_epoch)
    classifier.compile(optimizer=keras.optimizers.Adam(schedule),
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                       metrics=["accuracy"])
    classifier.fit(train, epochs=config.epochs, validation_data=evaluation, verbose=2)
    _, accuracy = classifier.evaluate(evaluation, verbose=0)
    log.info("classifier eval accuracy %.4f", accuracy)

    module = ClassifierModule(classifier)
    tf.saved_model.save(module, fn_args.serving_model_dir, signatures={"embed": module.embed})
    # The real-data floor: real training images against the eval images, measured as the
    # Evaluator measures generated ones.
    real_train, _ = load_arrays(fn_args.train_files, config.floor_samples)
    real_eval, _ = load_arrays(fn_args.eval_files, config.floor_samples)
    eval_features, _ = embed_channels(module.embed, real_eval)
    train_features, train_probs = embed_channels(module.embed, real_train)
    floor = quality_metrics.sample_metrics(eval_features, train_features, train_probs)
    record = {"eval_accuracy": float(accuracy), "floor": floor,
              "floor_samples": int(min(len(real_train), len(real_eval)))}
    with tf.io.gfile.GFile(os.path.join(os.path.dirname(fn_args.serving_model_dir),
                                        CLASSIFIER_METRICS_FILE),
                           "w") as f:
        json.dump(record, f, indent=2)
