"""Every benchmark in a tiny mode (a few steps, the committed MNIST slice), so none can break
unnoticed: each runs as its command line runs it, in a process of its own, and its output is
checked for what it reports, not only for exit status."""

import csv
import json
import math
import os
import pathlib
import re
import statistics
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLICE = os.path.join(ROOT, "tests", "data", "mnist_slice")


def run_bench(module: str, *args: str, timeout: int = 900) -> str:
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{module} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def quality_run(tmp_path_factory) -> str:
    """bench.bench_quality: `default` through the whole pipeline, 4 steps, on the slice."""
    output_dir = str(tmp_path_factory.mktemp("bench-quality"))
    run_bench("bench.bench_quality", "--mnist-dir", SLICE, "--output-dir", output_dir,
              "--preset", "default", "--train-steps", "4")
    return output_dir


def checkpoint(run_dir: str) -> str:
    directory = os.path.join(run_dir, "checkpoints")
    (key,) = os.listdir(directory)
    return os.path.join(directory, key, "ckpt-4")


def test_bench_quality_reports_the_run_with_its_provenance(quality_run):
    report_dir = os.path.join(quality_run, "report")
    assert {"report.json", "metrics.json", "samples.png", "curves.csv",
            "curves.png"} <= set(os.listdir(report_dir))
    with open(os.path.join(report_dir, "report.json")) as f:
        report = json.load(f)
    assert report["preset"] == "default" and report["train_steps"] == 4
    assert re.fullmatch(r"[0-9a-f]{40}", report["commit"])
    assert report["machine"]["cores"] >= 1 and report["command"].startswith("python -m bench")
    assert report["fid_to_floor"] == pytest.approx(report["fid"] / report["floor_fid"])
    with open(os.path.join(report_dir, "curves.csv")) as f:
        rows = list(csv.DictReader(f))
    assert rows and math.isfinite(float(rows[-1]["d_loss"]))
    assert any(row.get("fid_averaged") for row in rows)  # The checkpoint's FID, averaged G.


@pytest.fixture(scope="module")
def stacked_quality_run(tmp_path_factory) -> str:
    """bench.bench_quality: `smoke` on Stacked MNIST through the whole pipeline, 4 steps."""
    output_dir = str(tmp_path_factory.mktemp("bench-quality-stacked"))
    run_bench("bench.bench_quality", "--mnist-dir", SLICE, "--output-dir", output_dir,
              "--preset", "smoke", "--dataset", "stacked_mnist", "--train-steps", "4")
    return output_dir


def test_bench_quality_on_stacked_mnist_reports_coverage_and_the_mode_histogram(
        stacked_quality_run):
    report_dir = pathlib.Path(stacked_quality_run) / "report"
    assert "modes.png" in os.listdir(report_dir)
    report = json.loads((report_dir / "report.json").read_text())
    assert 1 <= report["modes_covered"] <= report["dataset_modes"] == 1000
    assert report["floor_mode_kl"] >= 0 and len(report["fid_per_channel"]) == 3
    assert len(report["channel_kl"]) == 3 and report["mode_kl"] == pytest.approx(
        sum(report["channel_kl"]) + report["mode_dependence"])
    with open(report_dir / "curves.csv") as f:
        (row,) = [r for r in csv.DictReader(f) if r.get("modes_covered_raw")]
    assert 1 <= float(row["modes_covered_raw"]) <= 1000 and float(row["mode_kl_raw"]) >= 0


def test_quality_ablation_scores_each_variant_trained_and_averaged(quality_run, tmp_path):
    out = tmp_path / "rows.jsonl"
    printed = run_bench("bench.quality_ablation", "--run-output-dir", quality_run,
                        "--variant", "ema:", "--variant", "r1:r1_weight=1.0", "--seeds", "0",
                        "--eval-at", "2", "--samples", "200", "--out", str(out))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {(row["variant"], row["generator"]) for row in rows} == {
        ("ema", "raw"), ("ema", "averaged"), ("r1", "raw"), ("r1", "averaged")}
    assert all(math.isfinite(row["fid"]) and row["step"] == 2 for row in rows)
    assert "| ema | 0 | 2 |" in printed and "| r1 | 0 | 2 |" in printed


def test_quality_ablation_on_stacked_mnist_counts_the_modes_of_three_channel_variants(
        stacked_quality_run, tmp_path):
    out = tmp_path / "rows.jsonl"
    printed = run_bench("bench.quality_ablation", "--preset", "smoke",
                        "--run-output-dir", stacked_quality_run, "--variant", "pack2:pack=2",
                        "--variant", "head:latent_categories=10,code_head_filters=4/8,"
                                     "real_cluster_weight=1.0,cluster_consistency_weight=1.0",
                        "--seeds", "0", "--eval-at", "2", "--samples", "300", "--out", str(out))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(row["variant"], row["generator"]) for row in rows] == [
        ("pack2", "raw"), ("head", "raw")]  # smoke has no average.
    for row in rows:
        assert 1 <= row["modes_covered"] <= 300 and 0 <= row["mode_kl"] <= math.log(1000)
        assert 0 <= row["confident_share"] <= 1 and math.isfinite(row["fid"])
        assert row["mode_dependence"] >= 0 and len(row["channel_kl"]) == 3
        assert (f"| {row['modes_covered']} / {row['mode_kl']:.3f} "
                f"({sum(row['channel_kl']):.3f} + {row['mode_dependence']:.3f}) / ") in printed
        assert row["provenance"]["commit"] and "--variant head:" in row["provenance"]["command"]
    assert "modes / KL (digits + dependence) / legible" in printed


def test_quality_ablation_table_ends_with_each_variant_median_over_its_seeds(tmp_path):
    def row(seed, kl, generator="averaged", step=4500):
        return {"variant": "pack2", "seed": seed, "step": step, "generator": generator,
                "train_seconds": 1.0, "mnist_score": 7.0 + seed, "fid_to_floor": 30.0 + seed,
                "fid": 1.0, "min_class_share": 0.08, "max_class_share": 0.12,
                "precision": 0.7, "recall": 0.7, "modes_covered": 1000 - seed, "mode_kl": kl,
                "channel_kl": [kl / 4] * 3, "mode_dependence": kl / 4, "confident_share": 0.3}

    # Seeds 0-2, a second run of seed 0 (left out of the median: a seed's first run counts)
    # and the trained generator of seed 0 (a group of its own).
    rows = [row(0, 0.08), row(1, 0.04), row(2, 0.06), row(0, 0.5), row(0, 0.07, "raw")]
    table = tmp_path / "rows.jsonl"
    table.write_text("".join(json.dumps(r) + "\n" for r in rows))
    printed = run_bench("bench.quality_ablation", "--table", str(table))
    assert "| pack2 | 4,500 | averaged | 3 | 8.00 | 31.0x | 999 | 0.060 | 30% |" in printed
    assert "| pack2 | 4,500 | raw | 1 | 7.00 | 30.0x | 1000 | 0.070 | 30% |" in printed
    assert "| pack2 | 0 (run 2) | 4,500 |" in printed  # The per-seed table keeps every run.


def test_mode_split_adds_up_to_the_mode_kl_and_refuses_an_mnist_evaluation():
    metrics = os.path.join(ROOT, "docs", "bench_quality_stacked", "metrics.json")
    printed = run_bench("bench.mode_split", metrics)
    with open(metrics) as f:
        expected = json.load(f)["metrics"]["mode_kl"]
    generated = next(line for line in printed.splitlines() if ": generated |" in line)
    _, _, modes, kl, channels, dependence, _ = generated.split("|")
    assert int(modes) == 1000 and float(kl) == pytest.approx(expected, abs=1e-4)
    parts = [float(value) for value in channels.split("+")]
    assert len(parts) == 3 and sum(parts) + float(dependence) == pytest.approx(expected, abs=4e-4)
    shares = [line.split("|")[3].split() for line in printed.splitlines()
              if ": generated | " in line and line.count("|") == 4]
    assert len(shares) == 3 and all(len(row) == 10 for row in shares)
    assert all(sum(map(float, row)) == pytest.approx(100, abs=0.5) for row in shares)
    done = subprocess.run([sys.executable, "-m", "bench.mode_split",
                           os.path.join(ROOT, "docs", "bench_quality_spec", "metrics.json")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1 and "not a Stacked MNIST evaluation" in done.stderr


def test_cluster_purity_tabulates_the_heads_clusters(quality_run):
    printed = run_bench("bench.cluster_purity", checkpoint(quality_run), quality_run,
                        "--samples", "200")
    purities = [float(value) for value in re.findall(r"purity ([0-9.]+)", printed)]
    assert purities and all(0.1 <= value <= 1.0 for value in purities)


def test_evaluate_checkpoint_prints_every_metric_beside_its_floor(quality_run):
    printed = run_bench("bench.evaluate_checkpoint", checkpoint(quality_run), quality_run,
                        "--samples", "200")
    assert re.search(r"^fid\s+[0-9.]+\s+real-data floor\s+[0-9.]+", printed, re.M)
    assert re.search(r"FID / floor: [0-9.]+", printed)


def test_confidence_histogram_bins_real_and_generated_samples(quality_run, tmp_path):
    (version,) = [os.path.join(root, "Format-Serving") for root, dirs, _ in os.walk(
        os.path.join(quality_run, "pipeline_root", "Trainer", "model")) if "Format-Serving" in dirs]
    out = tmp_path / "histogram.png"
    run_bench("bench.confidence_histogram", "--run-output-dir", quality_run,
              "--generator", f"tiny={version}", "--samples", "200", "--out", str(out))
    result = json.loads((tmp_path / "histogram.json").read_text())["results"]
    assert set(result) == {"real eval images", "tiny"}
    for values in result.values():
        assert sum(values["bin_shares"]) == pytest.approx(1.0)
    assert out.stat().st_size > 0


@pytest.mark.parametrize("preset, leaves_out", [
    ("spec", []),
    ("default", ["real_cluster_loss", "cluster_consistency_loss", "code_loss", "weight average"]),
])
def test_bench_train_compares_at_equal_precision_and_counts_flops(tmp_path, preset, leaves_out):
    report_path = tmp_path / "train.json"
    printed = run_bench("bench.bench_train", "--mnist-dir", SLICE, "--preset", preset,
                        "--steps", "2", "--rounds", "3", "--matmul-size", "256",
                        "--skip-pipeline", "--report", str(report_path))
    report = json.loads(report_path.read_text())
    assert report["reference_leaves_out"] == leaves_out
    assert report["precision"]["reference"] == report["precision"]["project_float32"] == "float32"
    rates, rounds = report["images_per_second"], report["rounds"]
    assert len(rounds["reference"]) == 3  # The ratio pairs the runs of each round.
    assert report["ratio_equal_precision"] == pytest.approx(statistics.median(
        own / ref for own, ref in zip(rounds["project_float32"], rounds["reference"])))
    for name, flops in report["flops"].items():
        assert flops["achieved_flops_per_second"] == pytest.approx(
            2 * flops["step_multiply_adds_per_image"] * rates[name])
        assert flops["matmul_flops_per_second"] > 0
    printed_ratio = float(re.search(r"ratio_vs_reference: ([0-9.]+)", printed).group(1))
    assert printed_ratio == pytest.approx(report["ratio_equal_precision"], abs=0.006)


def test_the_multiply_add_count_follows_the_networks_and_the_schedule():
    """By hand for `spec` (28x28, 5x5 kernels): G = dense 100 -> 7*7*128, transposed conv
    7x7x128 -> 14x14x64, transposed conv 14x14x64 -> 28x28x1; D = conv 28x28x1 -> 14x14x64,
    conv 14x14x64 -> 7x7x128, dense 6272 -> 1. A step with two G updates: 6G + 10D."""
    from bench.bench_train import forward_multiply_adds, step_multiply_adds
    from dcgan_common.config import preset
    from trainer.models import build_discriminator, build_generator
    config = preset("spec").trainer
    g = 100 * 6272 + 7 * 7 * 128 * 25 * 64 + 14 * 14 * 64 * 25
    d = 14 * 14 * 64 * 25 + 7 * 7 * 128 * 25 * 64 + 6272
    assert forward_multiply_adds(build_generator(config)) == g
    assert forward_multiply_adds(build_discriminator(config)) == d
    assert step_multiply_adds(config, g, d) == 6 * g + 10 * d


def test_bench_serving_reports_latency_per_protocol_and_batch(tmp_path):
    report_path = tmp_path / "serving.json"
    run_bench("bench.bench_serving", "--repeats", "3", "--concurrency", "2",
              "--concurrent-requests", "8", "--report", str(report_path))
    report = json.loads(report_path.read_text())
    assert set(report["latency"]) == {f"{name} count={count}" for name in
                                      ("in-process", "gRPC", "REST") for count in (1, 64)}
    assert all(0 < value["p50_ms"] <= value["p99_ms"] for value in report["latency"].values())
    assert set(report["images_per_second_at_concurrency_count16"]) == {"gRPC", "REST"}


def test_bench_step_ops_times_every_convolution_and_the_step():
    printed = run_bench("bench.bench_step_ops", "--repeats", "1")
    shares = re.findall(r"convolution share (\d+)%", printed)
    assert len(shares) == 4  # native and project, in float32 and bfloat16.


def test_quality_seeds_reports_median_and_range_over_seeds(tmp_path):
    """On Stacked MNIST, so the coverage numbers are in the report too."""
    report_path = tmp_path / "seeds.json"
    run_bench("bench.quality_seeds", "--preset", "smoke", "--dataset", "stacked_mnist",
              "--seeds", "0", "1", "--mnist-dir", SLICE, "--output-root", str(tmp_path / "runs"),
              "--report", str(report_path))
    report = json.loads(report_path.read_text())
    assert sorted(os.listdir(tmp_path / "runs")) == ["smoke-stacked_mnist-seed0",
                                                     "smoke-stacked_mnist-seed1"]
    fids = [run["fid_to_floor"] for run in report["runs"]]
    assert [run["seed"] for run in report["runs"]] == [0, 1]
    assert report["spread"]["fid_to_floor"] == {"median": pytest.approx(sum(fids) / 2),
                                                "min": min(fids), "max": max(fids)}
    kls = [run["mode_kl"] for run in report["runs"]]
    assert all(0 < kl <= math.log(1000) and run["floor_mode_kl"] >= 0
               for kl, run in zip(kls, report["runs"]))
    assert report["spread"]["mode_kl"]["median"] == pytest.approx(sum(kls) / 2)
    assert all(run["verdict"] == "BLESSED" and run["wall_time_s"] > 0 for run in report["runs"])


def test_step_fingerprint_is_identical_for_the_same_code_and_names_what_differs(tmp_path):
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    run_bench("bench.step_fingerprint", "--out", str(first), "--steps", "2")
    printed = run_bench("bench.step_fingerprint", "--out", str(second), "--steps", "2",
                        "--compare", str(first))
    assert printed.count("identical") == 4
    edited = json.loads(first.read_text())
    edited["default"]["losses"][1]["d_loss"] += 1e-7
    first.write_text(json.dumps(edited))
    done = subprocess.run([sys.executable, "-m", "bench.step_fingerprint", "--out",
                           str(tmp_path / "third.json"), "--steps", "2", "--compare", str(first)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 1 and "default: differs" in done.stdout


def test_checkpoint_samples_of_a_conditional_generator_ask_for_seed_mod_10():
    """bench_quality's curves, cluster_purity and quality_ablation draw through this; a
    conditional generator needs its labels (as the Evaluator asks: digit seed % 10)."""
    from bench.evaluate_checkpoint import generator_samples
    from settings import trainer_config
    from trainer.models import build_generator
    generator = build_generator(trainer_config(generator_filters=(16, 8), conditional=True,
                                               mixed_precision="float32"))
    samples = generator_samples(generator, 100, 12)
    assert samples.shape == (12, 28, 28, 1) and samples.dtype == "uint8"
