"""The spread of a preset's quality over seeds: `dcgan-pipeline` once per Trainer seed, each
in its own output directory, as `make run` runs it; the Evaluator's numbers per seed, their
median and range, and each run's wall time, in one JSON report.

    python -m bench.quality_seeds --preset default --seeds 0 1 2 \\
        --mnist-dir ../shared/datasets/mnist --output-root runs/seeds \\
        --report docs/reports/quality_default.json

A fresh clone's `make run` (seed 0) may land anywhere in the range: the seed fixes the initial
weights, the data order and the noise, and the machine's kernels differ in the last bits.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from bench.provenance import provenance

# The Evaluator's numbers a report keeps per seed (fid_to_floor is FID / its real-data floor).
KEPT = ("fid", "fid_to_floor", "mnist_score", "min_class_share", "max_class_share",
        "precision", "recall")
# And on Stacked MNIST (datasets of several digits per image), the coverage of its modes.
COVERAGE_KEPT = ("modes_covered", "mode_kl", "confident_share")


def seed_run(preset: str, seed: int, mnist_dir: str, output_dir: str,
             extra: list[str]) -> dict:
    """One `dcgan-pipeline` run; its verdict, numbers and wall time."""
    command = [sys.executable, "-m", "pipeline.console", "--preset", preset,
               "--seed", str(seed), "--output-dir", output_dir, *extra]
    if mnist_dir:
        command += ["--mnist-dir", mnist_dir]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"seed {seed}: dcgan-pipeline failed ({done.returncode}):\n"
                         f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    with open(os.path.join(output_dir, "run_summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    metrics, floor = summary["quality_metrics"], summary["real_data_floor"]
    values = {**metrics, "fid_to_floor": metrics["fid"] / floor["fid"]}
    coverage = {name: values[name] for name in COVERAGE_KEPT if name in values}
    if coverage:
        coverage["floor_mode_kl"] = floor["mode_kl"]
    return {"seed": seed, "verdict": summary["verdict"], "wall_time_s": round(wall, 1),
            "trainer_s": summary["component_durations"]["Trainer"]["seconds"],
            "floor_fid": floor["fid"], "floor_mnist_score": floor["mnist_score"],
            **{name: values[name] for name in KEPT}, **coverage}


def spread(runs: list[dict]) -> dict:
    """Per number: median, min and max over the runs."""
    coverage = [name for name in COVERAGE_KEPT if all(name in run for run in runs)]
    return {name: {"median": statistics.median(run[name] for run in runs),
                   "min": min(run[name] for run in runs), "max": max(run[name] for run in runs)}
            for name in (*KEPT, *coverage, "wall_time_s", "trainer_s")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--mnist-dir", default=os.environ.get("MNIST_DIR", ""))
    parser.add_argument("--output-root", default="runs/seeds")
    parser.add_argument("--report", required=True, help="where the JSON report goes")
    parser.add_argument("--train-steps", type=int, help="override (tiny mode in the tests)")
    parser.add_argument("--dataset", help="override the preset's dataset (the recipe on "
                                          "Stacked MNIST: --preset spec --dataset stacked_mnist)")
    parser.add_argument("--note", default="", help="recorded as is (e.g. what else ran)")
    args = parser.parse_args(argv)
    extra = ["--train-steps", str(args.train_steps)] if args.train_steps else []
    extra += ["--dataset", args.dataset] if args.dataset else []
    header = provenance("bench.quality_seeds")
    runs = []
    for seed in args.seeds:
        name = "-".join(filter(None, (args.preset, args.dataset, f"seed{seed}")))
        output_dir = os.path.join(args.output_root, name)
        runs.append(seed_run(args.preset, seed, args.mnist_dir, output_dir, extra))
        print(json.dumps(runs[-1]), flush=True)
    report = {**header, "preset": args.preset, "dataset": args.dataset, "seeds": args.seeds,
              "mnist": "full" if args.mnist_dir else "tensorflow-datasets",
              "note": args.note, "runs": runs, "spread": spread(runs)}
    os.makedirs(os.path.dirname(os.path.abspath(args.report)), exist_ok=True)
    with open(args.report, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    print(f"report: {args.report}")


if __name__ == "__main__":
    main()
