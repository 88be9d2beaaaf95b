"""Where things are on disk, as every stage reads them: TF Serving's model directory, a
Trainer run directory, the files inside the Evaluator's and the classifier's artifacts."""

from __future__ import annotations

import os

import tensorflow as tf

# TF Serving's layout: <base>/<model name>/<integer version>/saved_model.pb, and the warmup
# requests it replays before serving a version.
SAVED_MODEL_FILE = "saved_model.pb"  # What a SavedModel loader reads first.
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# Written by the Pusher into each version it publishes: which model it is (a digest of its
# files), so a retried Pusher finds the version it already published.
PUSH_RECORD_FILE = os.path.join("assets.extra", "dcgan_push_record.json")
# In the Trainer's ModelRun directory.
SAMPLES_DIR = "samples"  # step_<N>.png sample grids.
LOGS_DIR = "logs"  # TensorBoard events.
# In the Evaluator's ModelEvaluation artifact: every metric, floor, gates and the verdict.
EVALUATION_FILE = "metrics.json"
SAMPLES_FILE = "samples.png"
# In the classifier's Model artifact: its eval accuracy and the real-data floor.
CLASSIFIER_METRICS_FILE = "classifier_metrics.json"


def available_versions(base_path: str) -> list[int]:
    """Numeric version directories that hold a saved_model.pb, ascending."""
    if not tf.io.gfile.isdir(base_path):
        return []
    versions = []
    for name in tf.io.gfile.listdir(base_path):
        name = name.rstrip("/")
        if name.isdigit() and tf.io.gfile.exists(os.path.join(base_path, name, SAVED_MODEL_FILE)):
            versions.append(int(name))
    return sorted(versions)
