"""A collapsed and an untrained generator are not blessed and not pushed (LocalDagRunner).

The candidates are imported next to the smoke run's classifier and eval
examples; the Evaluator (default, full-MNIST gates) and the Pusher are the
pipeline's own, pointed at the smoke run's push destination.
"""

import dataclasses
import json
import os

import keras
import pytest
from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from components import atomic_pusher
from components.sample_quality_evaluator import SampleQualityEvaluator
from dcgan_common.layout import EVALUATION_FILE
from pipeline import pipeline as pipeline_def
from dcgan_common.config import PRESETS, EvaluatorConfig
from trainer.export import export_generator
from trainer.models import build_generator
from pipeline.metadata import live_artifacts
from pipeline_helpers import pushed_versions
from settings import trainer_config


def collapsed_generator() -> keras.Model:
    """Ignores z: every sample is the same blob."""
    z = keras.Input((100,))
    x = keras.layers.Dense(28 * 28, kernel_initializer="zeros",
                           bias_initializer=keras.initializers.RandomNormal(seed=0))(z)
    return keras.Model(z, keras.layers.Reshape((28, 28, 1))(keras.layers.Activation("tanh")(x)))


CANDIDATES = {
    "collapsed": collapsed_generator,
    "untrained": lambda: build_generator(trainer_config(generator_filters=(32, 16))),
}


def evaluate_and_push(e2e_config, name: str, candidate: str, served_dir: str,
                      evaluator_config: EvaluatorConfig, output_dir) -> tuple[dict, bool]:
    """The pipeline's Evaluator and Pusher on `candidate` (a Model artifact directory, with
    Format-Serving), next to the smoke run's classifier and eval examples; returns the
    Evaluator's report and whether the Pusher pushed."""
    config = dataclasses.replace(e2e_config, pipeline_name=name, output_dir=str(output_dir))
    (classifier,) = [a for a in live_artifacts(e2e_config, "Model")
                     if f"/{pipeline_def.CLASSIFIER_NODE_ID}/" in a.uri]
    (transformed,) = [a for a in live_artifacts(e2e_config, "Examples")
                      if "/Transform/" in a.uri]
    imports = {
        "generator": tfx.dsl.Importer(source_uri=candidate,
                                      artifact_type=tfx.types.standard_artifacts.Model
                                      ).with_id("import_generator"),
        "classifier": tfx.dsl.Importer(source_uri=classifier.uri,
                                       artifact_type=tfx.types.standard_artifacts.Model
                                       ).with_id("import_classifier"),
        "examples": tfx.dsl.Importer(source_uri=transformed.uri,
                                     artifact_type=tfx.types.standard_artifacts.Examples,
                                     properties={"split_names": '["train", "eval"]'}
                                     ).with_id("import_examples"),
    }
    evaluator = SampleQualityEvaluator(
        generator=imports["generator"].outputs["result"],
        classifier=imports["classifier"].outputs["result"],
        examples=imports["examples"].outputs["result"],
        serving_model_dir=served_dir,
        evaluator_config=json.dumps(evaluator_config.to_dict()))
    pusher = tfx.components.Pusher(
        model=imports["generator"].outputs["result"],
        model_blessing=evaluator.outputs["blessing"],
        custom_executor_spec=executor_spec.ExecutorClassSpec(atomic_pusher.Executor),
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=served_dir)))
    tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name, pipeline_root=pipeline_def.pipeline_root(config),
        components=[*imports.values(), evaluator, pusher],
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            pipeline_def.metadata_path(config))))

    (blessing,) = live_artifacts(config, "ModelBlessing")
    (evaluation,) = live_artifacts(config, "ModelEvaluation")
    with open(os.path.join(evaluation.uri, EVALUATION_FILE)) as f:
        report = json.load(f)
    blessed = blessing.custom_properties["blessed"].int_value == 1
    assert os.path.exists(os.path.join(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"))
    assert blessed == (report["verdict"] == "BLESSED")
    (pushed,) = live_artifacts(config, "PushedModel")
    return report, pushed.custom_properties["pushed"].int_value == 1


@pytest.mark.parametrize("kind", sorted(CANDIDATES))
def test_bad_generator_is_not_blessed_and_not_pushed(e2e, tmp_path, kind):
    served_dir = pipeline_def.serving_model_dir(e2e["config"])
    versions_before = pushed_versions(e2e["config"])
    assert versions_before, "the smoke run pushed a version to compare against"
    keras.utils.set_random_seed(1)
    export_generator(CANDIDATES[kind](), str(tmp_path / "candidate" / "Format-Serving"))
    report, pushed = evaluate_and_push(e2e["config"], f"evaluate-{kind}",
                                       str(tmp_path / "candidate"), served_dir,
                                       EvaluatorConfig(num_samples=500), tmp_path / "out")
    assert report["verdict"] == "NOT_BLESSED" and not pushed
    assert any(r.startswith("MNIST score") for r in report["reasons"]), report["reasons"]
    assert report["baseline"]["version"] == int(versions_before[-1])
    assert pushed_versions(e2e["config"]) == versions_before  # The served version stays.
    if kind == "collapsed":
        assert report["metrics"]["max_class_share"] == 1.0
        assert any("classes covered" in r for r in report["reasons"])


def test_a_better_challenger_is_pushed_over_the_served_version_a_worse_one_is_not(e2e, tmp_path):
    """Under the smoke preset's gates (absolute gates open, non-regression kept): the trained
    smoke generator replaces a collapsed one; then the collapsed one does not replace it. A
    served version that does not load is skipped, not a crash."""
    served = tmp_path / "serving" / "dcgan_mnist"
    export_generator(collapsed_generator(), str(served / "1"))
    (served / "2").mkdir()
    (served / "2" / "saved_model.pb").write_bytes(b"not a SavedModel")  # A broken push.
    gates = PRESETS["smoke"].evaluator
    (trained,) = [a for a in live_artifacts(e2e["config"], "Model") if "/Trainer/" in a.uri]

    report, pushed = evaluate_and_push(e2e["config"], "challenger-better", trained.uri,
                                       str(served), gates, tmp_path / "better")
    assert report["verdict"] == "BLESSED" and pushed, report["reasons"]
    assert report["baseline"]["version"] == 1
    assert [entry["version"] for entry in report["skipped_served_versions"]] == [2]
    assert report["metrics"]["fid"] < report["baseline"]["fid"]
    versions = sorted(int(v) for v in os.listdir(served))
    assert versions[:2] == [1, 2] and len(versions) == 3  # Version 3: the challenger.

    keras.utils.set_random_seed(1)
    export_generator(collapsed_generator(), str(tmp_path / "worse" / "Format-Serving"))
    report, pushed = evaluate_and_push(e2e["config"], "challenger-worse",
                                       str(tmp_path / "worse"), str(served), gates,
                                       tmp_path / "worse-run")
    assert report["verdict"] == "NOT_BLESSED" and not pushed
    assert report["baseline"]["version"] == versions[-1]
    (reason,) = report["reasons"]
    assert f"regresses on the served version {versions[-1]}'s" in reason
    assert sorted(int(v) for v in os.listdir(served)) == versions  # The served version stays.
