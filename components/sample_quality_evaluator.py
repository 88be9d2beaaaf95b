"""SampleQualityEvaluator: measures the generator's samples, blesses or rejects it.

Inputs: the candidate generator, the evaluation classifier, the transformed
examples (eval split). The baseline is the model currently served: the
highest numeric version in the push destination, read directly (the
open-source Kubeflow backend cannot run Resolver nodes). Outputs a
ModelEvaluation (`metrics.json`, `samples.png`) and a ModelBlessing that the
stock Pusher reads (`blessed` 1/0, and the BLESSED / NOT_BLESSED file the
stock Evaluator writes).
"""

import json
import logging
import math
import os
from typing import Any, Callable

import numpy as np
import tensorflow as tf
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts

from dcgan_common import features, quality_metrics
from dcgan_common import images as image_utils
from dcgan_common.config import EvaluatorConfig, QualityGates
from dcgan_common.embedding import embed_channels, load_embed_fn
from dcgan_common.examples import load_arrays
from dcgan_common.images import scale_pixels
from dcgan_common.layout import (CLASSIFIER_METRICS_FILE, EVALUATION_FILE, SAMPLES_FILE,
                                 available_versions)

log = logging.getLogger(__name__)  # dcgan-pipeline shows its lines (pipeline/console.py).

GENERATE_BATCH = 500


def generate_samples(generator_dir: str, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """uint8 [N, 28, 28, C] from the exported `generate` signature, a fixed seed per sample,
    and, for a conditional generator, the requested labels (seed % NUM_CLASSES)."""
    generate = tf.saved_model.load(generator_dir).signatures["generate"]
    conditional = "label" in generate.structured_input_signature[1]
    labels = seeds % features.NUM_CLASSES if conditional else None
    batches = []
    for start in range(0, len(seeds), GENERATE_BATCH):
        inputs = {"seed": tf.constant(seeds[start:start + GENERATE_BATCH])}
        if labels is not None:
            inputs["label"] = tf.constant(labels[start:start + GENERATE_BATCH])
        batches.append(generate(**inputs)["images"].numpy())
    return np.concatenate(batches), labels


def to_unit_range(pixels: np.ndarray) -> np.ndarray:
    """Generated uint8 pixels scaled exactly as Transform scales real ones."""
    return scale_pixels(pixels).numpy()


def evaluate_generator(generator_dir: str, embed_fn, real_features: np.ndarray,
                       real_labels: np.ndarray, seeds: np.ndarray
                       ) -> tuple[dict[str, Any], np.ndarray]:
    """The metrics of the generator's samples (each channel a digit) against the real images'
    channel features [C, N, D] (quality_metrics.sample_metrics), and the samples."""
    samples, requested = generate_samples(generator_dir, seeds)
    if samples.shape[-1] != real_features.shape[0]:
        raise ValueError(f"{generator_dir} draws {samples.shape[-1]}-channel images; the data "
                         f"has {real_features.shape[0]} channels")
    fake_features, fake_probs = embed_channels(embed_fn, to_unit_range(samples))
    metrics = quality_metrics.sample_metrics(real_features, fake_features, fake_probs)
    if requested is not None:
        metrics.update(quality_metrics.conditional_metrics(
            real_features[0], real_labels, fake_features[0], fake_probs[0], requested))
    return metrics, samples


def _gate(reasons: list[str], name: str, value: Any, passes: Callable[[float], bool],
          limit_text: str) -> None:
    """Adds a reason when `value` is not finite or fails `passes`: NaN fails closed."""
    if value is None or not math.isfinite(value):
        reasons.append(f"{name} is {value}, not a finite number")
    elif not passes(value):
        reasons.append(f"{name} {value:.4f} {limit_text}")


def failed_gates(metrics: dict[str, Any], floor: dict[str, Any], gates: QualityGates,
                 baseline: dict[str, Any] | None, classifier_accuracy: float) -> list[str]:
    """Every gate the candidate fails, in words."""
    reasons: list[str] = []
    _gate(reasons, "classifier eval accuracy", classifier_accuracy,
          lambda v: v >= gates.min_classifier_accuracy,
          f"< {gates.min_classifier_accuracy}: no metric measured with it is trusted")
    fid_limit = gates.max_fid_to_floor * floor["fid"]
    _gate(reasons, "FID", metrics["fid"], lambda v: v <= fid_limit,
          f"> {gates.max_fid_to_floor} x real-data floor {floor['fid']:.3f} = {fid_limit:.3f}")
    _gate(reasons, "MNIST score", metrics["mnist_score"],
          lambda v: v >= gates.min_mnist_score, f"< {gates.min_mnist_score}")
    if metrics["classes_covered"] < gates.min_classes:
        reasons.append(f"{metrics['classes_covered']} classes covered < {gates.min_classes}")
    _gate(reasons, "smallest class share", metrics["min_class_share"],
          lambda v: v >= gates.min_class_share, f"< {gates.min_class_share}")
    _gate(reasons, "largest class share", metrics["max_class_share"],
          lambda v: v <= gates.max_class_share, f"> {gates.max_class_share}")
    if "mode_kl" in metrics:  # Stacked MNIST: every mode, evenly.
        if metrics["modes_covered"] < gates.min_modes_covered:
            reasons.append(f"{metrics['modes_covered']} of {metrics['num_modes']} modes "
                           f"covered < {gates.min_modes_covered}")
        _gate(reasons, "mode KL", metrics["mode_kl"], lambda v: v <= gates.max_mode_kl,
              f"> {gates.max_mode_kl} (real-data floor {floor.get('mode_kl', float('nan')):.4f})")
    if "conditional_accuracy" in metrics:
        _gate(reasons, "conditional accuracy", metrics["conditional_accuracy"],
              lambda v: v >= gates.min_conditional_accuracy,
              f"< {gates.min_conditional_accuracy}")
    if baseline is not None:
        limit = baseline["fid"] * (1 + gates.max_fid_regression)
        _gate(reasons, "FID", metrics["fid"], lambda v: v <= limit,
              f"regresses on the served version {baseline['version']}'s "
              f"{baseline['fid']:.3f} by more than {gates.max_fid_regression:.0%} "
              f"(limit {limit:.3f})")
    return reasons


def served_baseline(serving_model_dir: str, evaluate: Callable[[str], dict[str, Any]]
                    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The newest served version that loads, evaluated, and the newer ones that did not load.

    A version TF Serving cannot load is not served, so it is no baseline; skipping it keeps
    one broken push from blocking every later one.
    """
    skipped = []
    for version in reversed(available_versions(serving_model_dir)):
        path = os.path.join(serving_model_dir, str(version))
        try:
            metrics = evaluate(path)
        except Exception as err:  # pylint: disable=broad-except  # Any load failure.
            error = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            log.warning("SampleQualityEvaluator: served version %s does not load, skipped "
                        "(%s)", version, error)
            skipped.append({"version": version, "path": path, "error": error})
            continue
        if not math.isfinite(metrics["fid"]):
            log.warning("SampleQualityEvaluator: served version %s has FID %s, skipped",
                        version, metrics["fid"])
            skipped.append({"version": version, "path": path,
                            "error": f"FID is {metrics['fid']}"})
            continue
        return {"version": version, "path": path, **metrics}, skipped
    return None, skipped


def write_blessing(blessing: standard_artifacts.ModelBlessing, blessed: bool,
                   model: standard_artifacts.Model) -> None:
    blessing.set_int_custom_property("blessed", int(blessed))
    blessing.set_string_custom_property("current_model", model.uri)
    # Kubeflow's launcher, unlike LocalDagRunner, does not create output directories.
    tf.io.gfile.makedirs(blessing.uri)
    with tf.io.gfile.GFile(os.path.join(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"),
                           "w") as f:
        f.write("")


@component
def SampleQualityEvaluator(  # pylint: disable=invalid-name
    generator: InputArtifact[standard_artifacts.Model],
    classifier: InputArtifact[standard_artifacts.Model],
    examples: InputArtifact[standard_artifacts.Examples],
    evaluation: OutputArtifact[standard_artifacts.ModelEvaluation],
    blessing: OutputArtifact[standard_artifacts.ModelBlessing],
    serving_model_dir: Parameter[str],
    evaluator_config: Parameter[str],
) -> None:
    """Blesses the generator only when every gate of `evaluator_config` passes.

    Args:
      serving_model_dir: the push destination `<serving>/<model name>`; its
        highest numeric version is the baseline.
      evaluator_config: EvaluatorConfig as JSON.
    """
    config = EvaluatorConfig.from_dict(json.loads(evaluator_config))
    with tf.io.gfile.GFile(os.path.join(classifier.uri, CLASSIFIER_METRICS_FILE)) as f:
        classifier_record = json.load(f)
    embed_fn = load_embed_fn(classifier.uri)
    real, real_labels = load_arrays(
        [os.path.join(artifact_utils.get_split_uri([examples], "eval"), "*")], config.num_samples)
    real_features, _ = embed_channels(embed_fn, real)
    seeds = np.arange(config.seed, config.seed + config.num_samples, dtype=np.int64)
    metrics, samples = evaluate_generator(os.path.join(generator.uri, "Format-Serving"), embed_fn,
                                          real_features, real_labels, seeds)
    baseline, skipped = served_baseline(serving_model_dir, lambda path: evaluate_generator(
        path, embed_fn, real_features, real_labels, seeds)[0])
    reasons = failed_gates(metrics, classifier_record["floor"], config.gates, baseline,
                           classifier_record["eval_accuracy"])
    blessed = not reasons
    report = {
        "verdict": "BLESSED" if blessed else "NOT_BLESSED",
        "reasons": reasons,
        "metrics": metrics,
        "floor": classifier_record["floor"],
        "classifier_eval_accuracy": classifier_record["eval_accuracy"],
        "baseline": baseline,
        "skipped_served_versions": skipped,
        "num_samples": int(len(seeds)),
        "num_real": int(len(real)),
        "seeds": [int(seeds[0]), int(seeds[-1])],
        "gates": config.to_dict()["gates"],
    }
    tf.io.gfile.makedirs(evaluation.uri)  # As for the blessing.
    with tf.io.gfile.GFile(os.path.join(evaluation.uri, EVALUATION_FILE), "w") as f:
        json.dump(report, f, indent=2)
    grid = image_utils.tile(tf.constant(samples[:64]))
    image_utils.write_png(grid, os.path.join(evaluation.uri, SAMPLES_FILE))
    write_blessing(blessing, blessed, generator)
    coverage = (f", {metrics['modes_covered']} of {metrics['num_modes']} modes, mode KL "
                f"{metrics['mode_kl']:.3f} (floor {classifier_record['floor']['mode_kl']:.3f})"
                if "mode_kl" in metrics else "")
    log.info("SampleQualityEvaluator: %s (FID %.3f, floor %.3f, MNIST score %.3f%s)%s",
             report["verdict"], metrics["fid"], classifier_record["floor"]["fid"],
             metrics["mnist_score"], coverage, "".join(f"\n  - {r}" for r in reasons))
