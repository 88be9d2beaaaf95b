"""The Evaluator's gates: arithmetic, NaN fails closed, the classifier gate, the baseline search."""

import dataclasses
import json
import math
import pathlib

import pytest

from components.sample_quality_evaluator import failed_gates, served_baseline
from dcgan_common.config import PRESETS, QualityGates

FLOOR = {"fid": 1.25}
GOOD = {"fid": 10.0, "mnist_score": 9.0, "classes_covered": 10, "min_class_share": 0.09,
        "max_class_share": 0.11}
GATES = QualityGates()


def reasons(metrics=None, gates=GATES, baseline=None, accuracy=0.99):
    return failed_gates({**GOOD, **(metrics or {})}, FLOOR, gates, baseline, accuracy)


def test_a_good_candidate_passes_every_gate():
    assert reasons() == []


@pytest.mark.parametrize("fid, passes", [(10.9, True), (11.0, True), (11.1, False)])
def test_non_regression_at_a_10_percent_margin(fid, passes):
    """+9% passes, +10% is the limit, +11% fails: against the served version's FID 10."""
    found = reasons({"fid": fid}, baseline={"version": 7, "fid": 10.0})
    assert (found == []) == passes, found
    if not passes:
        (reason,) = found
        assert "regresses on the served version 7's 10.000 by more than 10%" in reason


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_no_preset_switches_non_regression_off(name):
    gates = PRESETS[name].evaluator.gates
    assert gates.max_fid_regression <= 0.10
    # A smoke-trained challenger twice as bad as the served generator is refused.
    found = reasons({"fid": 20.0}, gates=gates, baseline={"version": 1, "fid": 10.0})
    assert any("regresses" in reason for reason in found), found


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("metric, label", [
    ("fid", "FID"), ("mnist_score", "MNIST score"), ("min_class_share", "smallest class share"),
    ("max_class_share", "largest class share"), ("conditional_accuracy", "conditional accuracy")])
def test_a_metric_that_is_not_finite_fails_its_gate_by_name(metric, label, bad):
    found = reasons({metric: bad}, gates=PRESETS["smoke"].evaluator.gates)  # The loosest gates.
    assert f"{label} is {bad}, not a finite number" in found, found


def test_a_nan_fid_fails_non_regression_too():
    found = reasons({"fid": math.nan}, baseline={"version": 1, "fid": 10.0})
    assert sum("FID is nan" in reason for reason in found) == 2, found


@pytest.mark.parametrize("accuracy, passes", [(0.981, True), (0.98, True), (0.97, False),
                                              (math.nan, False)])
def test_a_weak_classifier_fails_the_verdict(accuracy, passes):
    found = reasons(accuracy=accuracy)
    assert (found == []) == passes, found
    if not passes:
        assert found[0].startswith("classifier eval accuracy")


def test_the_conditional_accuracy_gate_applies_to_conditional_generators():
    assert reasons({"conditional_accuracy": 0.96}) == []
    (reason,) = reasons({"conditional_accuracy": 0.90})
    assert reason == "conditional accuracy 0.9000 < 0.95"


@pytest.mark.parametrize("field, value", [("max_fid_regression", 1e6),
                                          ("max_fid_regression", math.inf),
                                          ("min_mnist_score", math.nan),
                                          ("max_fid_to_floor", -1.0)])
def test_gates_that_would_switch_a_check_off_are_refused(field, value):
    with pytest.raises(ValueError, match=f"QualityGates.{field} must be"):
        dataclasses.replace(GATES, **{field: value})


def test_the_baseline_is_the_newest_served_version_that_loads(tmp_path):
    for version in (1, 2, 3, 4):
        (tmp_path / str(version)).mkdir()
        (tmp_path / str(version) / "saved_model.pb").write_bytes(b"")
    fids = {"1": 12.0, "2": 11.0, "3": math.nan}

    def evaluate(path):
        version = path.rsplit("/", 1)[1]
        if version == "4":
            raise OSError("SavedModel file does not exist at: .../4/{saved_model.pbtxt|pb}")
        return {"fid": fids[version]}

    baseline, skipped = served_baseline(str(tmp_path), evaluate)
    assert baseline["version"] == 2 and baseline["fid"] == 11.0
    assert [entry["version"] for entry in skipped] == [4, 3]
    assert skipped[0]["error"].startswith("OSError: SavedModel file does not exist")
    assert skipped[1]["error"] == "FID is nan"


def test_no_loadable_version_means_no_baseline(tmp_path):
    (tmp_path / "5").mkdir()
    (tmp_path / "5" / "saved_model.pb").write_bytes(b"")

    def broken(path):
        raise ValueError("bad")

    baseline, skipped = served_baseline(str(tmp_path), broken)
    assert baseline is None and [entry["version"] for entry in skipped] == [5]


def measured(report: str) -> dict:
    """A committed Evaluator report (docs/<report>/metrics.json) of a run on the full data."""
    with open(pathlib.Path(__file__).parent.parent / "docs" / report / "metrics.json") as f:
        return json.load(f)


def verdict_under(report: dict, gates: QualityGates) -> list[str]:
    return failed_gates(report["metrics"], report["floor"], gates, None,
                        report["classifier_eval_accuracy"])


def test_the_gates_reject_the_recipe_that_the_default_has_left_behind():
    """Recalibrated gates (issue 14): the recipe's measured generator (`spec`, 3,000 steps:
    FID 25.5x the floor, MNIST score 7.23) is NOT_BLESSED under `default`'s and `full`'s
    gates, for its FID and its MNIST score; each preset's own measured run
    (docs/bench_quality_<preset>) passes them; `spec` keeps the gates it was calibrated with,
    so the reference recipe still ships from its own preset."""
    recipe = measured("bench_quality_spec")
    for name in ("default", "full"):
        found = verdict_under(recipe, PRESETS[name].evaluator.gates)
        assert [reason.split()[0] for reason in found] == ["FID", "MNIST"], (name, found)
        assert verdict_under(measured(f"bench_quality_{name}"),
                             PRESETS[name].evaluator.gates) == [], name
    assert verdict_under(recipe, PRESETS["spec"].evaluator.gates) == []


def test_the_stacked_gates_pass_every_measured_seed_and_refuse_what_the_preset_left_behind():
    """The `stacked` preset's gates, set between the preset (its per-channel code, three
    seeds: FID 9-11x the floor, MNIST score 9.1-9.3, mode KL 0.027-0.037) and what it
    replaced: each of its measured seeds passes them; the presets before it (no code: FID
    26-29x, MNIST score 7.7; packing 2: 31-35x, 7.5-7.6) are refused for their FID and MNIST
    score, and the recipe on Stacked MNIST (FID 118x, MNIST score 6.93, mode KL 0.159) for
    those and its mode KL."""
    gates = PRESETS["stacked"].evaluator.gates
    for seed in (0, 1, 2):
        report = f"reports/stacked/stacked_head_seed{seed}"
        assert verdict_under(measured(report), gates) == [], report
    before = [f"reports/stacked/stacked_nopack_seed{seed}" for seed in (0, 1, 2)] + [
        "bench_quality_stacked", "reports/stacked/stacked_seed1", "reports/stacked/stacked_seed2"]
    for report in before:
        found = verdict_under(measured(report), gates)
        assert [reason.split()[0] for reason in found] == ["FID", "MNIST"], (report, found)
    found = verdict_under(measured("reports/stacked/spec_3000_seed0"), gates)
    assert [reason.split()[0] for reason in found] == ["FID", "MNIST", "mode"], found
