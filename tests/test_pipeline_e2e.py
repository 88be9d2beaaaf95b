"""End to end: the whole DAG with LocalDagRunner on the committed real-MNIST slice."""

import json
import os
import time

import numpy as np
import tensorflow as tf

from components import atomic_pusher, mnist_idx
from pipeline import local_runner
from dcgan_common.config import PRESETS
from dcgan_common import features
from dcgan_common.layout import WARMUP_FILE
from pipeline.metadata import State, live_artifacts
from pipeline_helpers import NODES, pushed_versions, read_examples, split_pattern


def test_every_component_executed_once(e2e):
    executions = e2e["after_first"]
    assert sorted(executions) == sorted(NODES)
    for node in NODES:
        assert [e.last_known_state for e in executions[node]] == [State.COMPLETE], node


def test_second_run_hits_the_cache_everywhere(e2e):
    for node in NODES:
        states = [e.last_known_state for e in e2e["after_second"][node]]
        assert states == [State.COMPLETE, State.CACHED], node
    # Nothing was pushed again.
    assert pushed_versions(e2e["config"]) == e2e["versions_after_first"]
    assert e2e["second"]["pushed_model"] == e2e["first"]["pushed_model"]


def test_example_gen_emits_the_official_splits_as_raw_bytes(e2e, mnist_slice):
    (examples,) = live_artifacts(e2e["config"], "Examples")[:1]
    for split, count in (("train", 1000), ("eval", 500)):
        records = read_examples(split_pattern(examples, split))
        assert len(records) == count
        expected = mnist_idx.load_split(mnist_slice, split)
        first = records[0].features.feature
        assert first[features.IMAGE_KEY].bytes_list.value[0] == expected.images[0].tobytes()
        assert first[features.LABEL_KEY].int64_list.value[0] == expected.labels[0]


def test_transform_scales_the_real_pixels(e2e, mnist_slice):
    (transformed,) = [a for a in live_artifacts(e2e["config"], "Examples")
                      if "/Transform/" in a.uri]
    record = read_examples(split_pattern(transformed, "train"))[0].features.feature
    pixels = np.array(record[features.IMAGE_XF].float_list.value, np.float32)
    raw = mnist_idx.load_split(mnist_slice, "train").images[0].reshape(-1)
    np.testing.assert_allclose(pixels, raw / 127.5 - 1.0, atol=1e-6)
    assert record[features.LABEL_XF].int64_list.value[0] == 5


def test_a_numeric_version_is_pushed_and_serves_z_to_uint8_images(e2e):
    config, summary = e2e["config"], e2e["first"]
    (version,) = pushed_versions(config)
    assert version.isdigit()
    # Published with one rename: nothing is left in the staging directory.
    staging = atomic_pusher.staging_dir(os.path.dirname(summary["pushed_model"]))
    assert tf.io.gfile.listdir(staging) == []
    assert tf.io.gfile.exists(os.path.join(summary["pushed_model"], WARMUP_FILE))
    assert summary["pushed"] and summary["pushed_model"].rstrip("/").endswith(version)
    model = tf.saved_model.load(summary["pushed_model"])
    outputs = model.signatures["serving_default"](z=tf.random.normal([5, 100]))
    assert outputs["images"].dtype == tf.uint8
    assert outputs["images"].shape == (5, 28, 28, 1)
    decoded = tf.io.decode_png(outputs["png_bytes"][0])
    np.testing.assert_array_equal(decoded.numpy(), outputs["images"][0].numpy())


def test_the_trained_generator_is_evaluated_and_blessed_under_the_smoke_gates(e2e):
    summary = e2e["first"]
    assert summary["verdict"] == "BLESSED" and summary["verdict_reasons"] == []
    with open(summary["evaluation"]) as f:
        report = json.load(f)
    for key in ("fid", "kid_mean", "kid_std", "mnist_score", "classes_covered", "min_class_share",
                "max_class_share", "kl_to_uniform", "precision", "recall", "density", "coverage"):
        assert np.isfinite(report["metrics"][key]) and np.isfinite(report["floor"][key]), key
    assert report["num_samples"] == 500 and report["num_real"] == 500
    assert report["baseline"] is None  # Nothing was served before the first run.
    assert PRESETS["smoke"].evaluator.gates.min_classifier_accuracy <= \
        report["classifier_eval_accuracy"] <= 1.0
    # The real-data floor is far below the 20-step generator's FID.
    assert report["floor"]["fid"] < report["metrics"]["fid"]
    samples = tf.io.decode_png(tf.io.read_file(
        os.path.join(os.path.dirname(summary["evaluation"]), "samples.png")))
    assert samples.shape == (8 * 28, 8 * 28, 1)
    (blessing,) = live_artifacts(e2e["config"], "ModelBlessing")
    assert blessing.custom_properties["blessed"].int_value == 1
    assert os.path.exists(os.path.join(blessing.uri, "BLESSED"))


def test_sample_grids_logs_and_summary(e2e):
    summary = e2e["first"]
    names = [os.path.basename(p) for p in summary["sample_grids"]]
    assert names == ["step_000000.png", "step_000010.png", "step_000020.png"]
    grid = tf.io.decode_png(tf.io.read_file(summary["final_sample_grid"]))
    assert grid.shape == (8 * 28, 8 * 28, 1)
    assert tf.io.gfile.glob(os.path.join(summary["tensorboard_logs"], "events.out.tfevents.*"))
    with open(os.path.join(e2e["config"].output_dir, local_runner.SUMMARY_FILE)) as f:
        assert json.load(f)["pushed_model"] == summary["pushed_model"]
    assert os.path.exists(summary["metadata_db"])
    discriminator = os.path.join(os.path.dirname(summary["tensorboard_logs"]), "discriminator.keras")
    assert os.path.exists(discriminator)
    # The discriminator stays out of the served model.
    assert not tf.io.gfile.glob(os.path.join(summary["pushed_model"], "*.keras"))


def test_the_summary_holds_each_components_duration_from_the_metadata_store(e2e):
    first, second = e2e["first"]["component_durations"], e2e["second"]["component_durations"]
    assert sorted(first) == sorted(NODES) == sorted(second)
    assert {entry["state"] for entry in first.values()} == {"COMPLETE"}
    assert {entry["state"] for entry in second.values()} == {"CACHED"}
    for node, entry in first.items():  # The executions' own timestamps, per component.
        (execution,) = e2e["after_first"][node]
        assert entry["seconds"] == round((execution.last_update_time_since_epoch
                                          - execution.create_time_since_epoch) / 1000, 1)
    # Training takes longer than reading the schema; the sum fits inside the run.
    assert first["Trainer"]["seconds"] > first["ImportSchemaGen"]["seconds"]
    assert sum(entry["seconds"] for entry in first.values()) <= e2e["first"]["wall_time_s"]


def test_dcgan_serve_serves_the_pushed_model_to_dcgan_generate(e2e, tmp_path):
    """The user's path: the pipeline's push destination, `dcgan-serve`, `dcgan-generate`."""
    import subprocess
    import sys

    import portpicker

    from serving import client as client_lib
    config = e2e["config"]
    port = portpicker.pick_unused_port()
    base = os.path.dirname(e2e["first"]["pushed_model"])
    server = subprocess.Popen([sys.executable, "-m", "serving.cli", "--model-base-path", base,
                               "--model-name", config.model_name, "--port", str(port)])
    try:
        grid = tmp_path / "grid.png"
        args = ["--server", f"localhost:{port}", "--model", config.model_name, "--count", "64",
                "--timeout", "5", "--out", str(grid)]
        for _ in range(240):  # Until the server has loaded the model and listens.
            if client_lib.main(args) == 0:
                break
            assert server.poll() is None, "dcgan-serve exited"
            time.sleep(0.5)
        assert tf.io.decode_png(tf.io.read_file(str(grid))).shape == (8 * 28, 8 * 28, 1)
    finally:
        server.terminate()
        assert server.wait(30) == 0
