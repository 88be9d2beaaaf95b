"""Sample-quality ablation: trains generator variants on full MNIST (or Stacked MNIST) and
scores them as the Evaluator does, the trained (raw) and the weight-averaged generator side by
side.

    python -m bench.quality_ablation --run-output-dir runs/local \\
        --variant ema: --variant r1:r1_weight=1.0 --seeds 0 1 --eval-at 1000 2000 3000
    python -m bench.quality_ablation --table docs/quality_ablation.jsonl

RUN_OUTPUT_DIR is a finished `dcgan-pipeline` output directory of that preset: its transformed
train split is trained on (with as many channels as its images have), its classifier scores the
samples against its eval split (N samples, seeds 0..N-1, as the Evaluator draws them; on
Stacked MNIST also the modes covered, the mode KL and the legible share, as the Evaluator counts
them: pass --samples 26000 for its count). Every variant starts from the `--preset` trainer
settings (default: `default`) changed by KEY=VALUE pairs. One JSON line per (variant, seed,
step, generator) is appended to --out, with its provenance (command, commit, date, machine);
at the end a table of every run is printed, then each variant's median over its seeds.

    python -m bench.quality_ablation --preset stacked --run-output-dir runs/stacked \
        --variant pack2: --variant pack1:pack=1 --seeds 0 1 --eval-at 2000 4500 --samples 26000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import numpy as np
import tensorflow as tf

from dcgan_common import embedding, layout, quality_metrics
from components.sample_quality_evaluator import to_unit_range
from pipeline import metadata
from pipeline import pipeline as pipeline_def
from dcgan_common.config import TRAINER_GROUPS, TrainerConfig, preset, setting_path
from dcgan_common.examples import image_channels, load_arrays
from trainer.data import training_dataset
from bench.evaluate_checkpoint import generator_samples
from bench.provenance import provenance
from trainer.export import float32_copy
from trainer.gan import DCGAN
from trainer.strategy import make_strategy

def parse_variant(text: str, base: TrainerConfig) -> tuple[str, TrainerConfig]:
    """'name:key=value,key=value' -> (name, base with those settings, typed like the field;
    tuples as 256/128). A key is a setting's name (r1_weight) or its path (objective.r1_weight)."""
    name, _, assignments = text.partition(":")
    changes: dict[str, dict] = {}
    for assignment in filter(None, assignments.split(",")):
        key, _, value = assignment.partition("=")
        path = key if "." in key else setting_path(key)
        group, _, setting = (path or "").partition(".")
        if group not in TRAINER_GROUPS or setting_path(setting) != path:
            raise SystemExit(f"variant {name!r}: unknown TrainerConfig setting {key!r}")
        kind = type(getattr(getattr(base, group), setting))
        if kind is bool:
            typed = value.lower() == "true"
        elif kind is tuple:  # generator_filters=256/128
            typed = tuple(int(part) for part in value.split("/"))
        else:
            typed = kind(value)
        changes.setdefault(group, {})[setting] = typed
    return name, base.replace(**changes)


SCORED = ("fid", "mnist_score", "min_class_share", "max_class_share", "precision", "recall")
# Datasets of several digits per image (quality_metrics.mode_coverage).
COVERAGE_SCORED = ("modes_covered", "mode_kl", "channel_kl", "mode_dependence",
                   "confident_share")


def score(generator, z_dim: int, count: int, embed_fn, real_features: np.ndarray,
          floor: dict) -> dict[str, float]:
    """The Evaluator's numbers for `count` samples; real_features [C, N, D] per channel."""
    features, probabilities = embedding.embed_channels(
        embed_fn, to_unit_range(generator_samples(generator, z_dim, count)))
    metrics = quality_metrics.sample_metrics(real_features, features, probabilities)
    return {"fid_to_floor": metrics["fid"] / floor["fid"],
            **{key: metrics[key] for key in (*SCORED, *COVERAGE_SCORED) if key in metrics}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-output-dir", default="runs/local")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--variant", action="append",
                        help="NAME:KEY=VALUE,... (repeatable; 'ema:' is the preset unchanged)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--eval-at", type=int, nargs="+")
    parser.add_argument("--table", metavar="JSONL",
                        help="print the table of rows stored in JSONL (e.g. "
                             "docs/quality_ablation.jsonl) and train nothing")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--out", default="runs/quality_ablation.jsonl")
    args = parser.parse_args()
    if args.table:
        with open(args.table) as f:
            rows = [json.loads(line) for line in f]
        print_table(rows)
        print_medians(rows)
        return
    if not args.variant or not args.eval_at:
        parser.error("--variant and --eval-at are needed to train (or --table JSONL)")

    config = dataclasses.replace(preset(args.preset),
                                 output_dir=os.path.abspath(args.run_output_dir))
    run = metadata.latest_outputs(config)
    transformed = run[("Transform", "Examples")].uri
    classifier_uri = run[(pipeline_def.CLASSIFIER_NODE_ID, "Model")].uri
    embed_fn = embedding.load_embed_fn(classifier_uri)
    real, _ = load_arrays([os.path.join(transformed, "Split-eval", "*")], args.samples)
    real_features, _ = embedding.embed_channels(embed_fn, real)
    with tf.io.gfile.GFile(os.path.join(classifier_uri, layout.CLASSIFIER_METRICS_FILE)) as f:
        floor = json.load(f)["floor"]
    train_files = [os.path.join(transformed, "Split-train", "*")]
    base = config.trainer.replace(model={"channels": image_channels(train_files)})
    variants = [parse_variant(text, base) for text in args.variant]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)

    header = provenance("bench.quality_ablation")  # Every row says where it was measured.
    rows = []
    for name, variant in variants:
        for seed in args.seeds:
            trainer = variant.replace(runtime={"seed": seed},
                                      optimizer={"train_steps": max(args.eval_at)})
            gan = DCGAN(trainer, make_strategy(trainer.runtime.strategy))
            batches = iter(gan.strategy.experimental_distribute_dataset(
                training_dataset(train_files, trainer)))
            started, trained = time.perf_counter(), 0.0
            for step in range(1, trainer.optimizer.train_steps + 1):
                gan.train_step(next(batches))
                gan.step.assign(step)
                if step not in args.eval_at:
                    continue
                trained += time.perf_counter() - started
                generators = {"raw": float32_copy(gan.generator)}
                if gan.average is not None:
                    generators["averaged"] = gan.served_generator()
                for kind, generator in generators.items():
                    row = {"variant": name, "seed": seed, "step": step, "generator": kind,
                           "train_seconds": round(trained, 1),
                           **score(generator, trainer.model.z_dim, args.samples, embed_fn,
                                   real_features, floor), "provenance": header}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    with open(args.out, "a") as f:
                        f.write(json.dumps(row) + "\n")
                started = time.perf_counter()
    print_table(rows)
    print_medians(rows)


def print_table(rows: list[dict]) -> None:
    """A Markdown table (the README's): one line per run and step, trained and averaged
    generator side by side; a variant and seed run again (a step that comes back) is its own
    run, numbered in the seed column."""
    runs: dict[tuple, dict[str, dict]] = {}
    repeats: dict[tuple, int] = {}
    for row in rows:
        name = (row["variant"], row["seed"])
        repeat = repeats.setdefault(name, 0)
        if row["generator"] in runs.get((*name, repeat, row["step"]), {}):
            repeat = repeats[name] = repeat + 1
        runs.setdefault((*name, repeat, row["step"]), {})[row["generator"]] = row
    coverage = any("mode_kl" in row for row in rows)  # Stacked MNIST: modes, KL, legible.
    print("| variant | seed | step | train s | trained G: MNIST score / FID÷floor "
          "| averaged G: MNIST score / FID÷floor | precision / recall (averaged) "
          "| class shares (averaged) |"
          + (" trained G: modes / KL (digits + dependence) / legible "
            "| averaged G: modes / KL (digits + dependence) / legible |"
             if coverage else ""))
    print("|---|---|---|---|---|---|---|---|" + ("---|---|" if coverage else ""))
    for (variant, seed, repeat, step), kinds in runs.items():
        raw, averaged = kinds.get("raw"), kinds.get("averaged") or kinds.get("raw")

        def scores(row):
            return f"{row['mnist_score']:.2f} / {row['fid_to_floor']:.1f}x" if row else "-"

        def modes(row):
            if not row:
                return "-"
            split = (f" ({sum(row['channel_kl']):.3f} + {row['mode_dependence']:.3f})"
                     if "mode_dependence" in row else "")
            return (f"{row['modes_covered']} / {row['mode_kl']:.3f}{split} / "
                    f"{100 * row['confident_share']:.0f}%")

        run = f"{seed}" + (f" (run {repeat + 1})" if repeat else "")
        print(f"| {variant} | {run} | {step:,} | {averaged['train_seconds']:.0f} "
              f"| {scores(raw)} | {scores(kinds.get('averaged'))} "
              f"| {averaged['precision']:.2f} / {averaged['recall']:.2f} "
              f"| {100 * averaged['min_class_share']:.1f}%-"
              f"{100 * averaged['max_class_share']:.1f}% |"
              + (f" {modes(raw)} | {modes(kinds.get('averaged'))} |" if coverage else ""))


# The medians' columns: (heading, row key, format); coverage columns only where rows have them.
MEDIAN_COLUMNS = (("MNIST score", "mnist_score", "{:.2f}"),
                  ("FID÷floor", "fid_to_floor", "{:.1f}x"))
MEDIAN_COVERAGE_COLUMNS = (("modes", "modes_covered", "{:.0f}"), ("KL", "mode_kl", "{:.3f}"),
                           ("legible", "confident_share", "{:.0%}"))


def print_medians(rows: list[dict]) -> None:
    """A Markdown table of each (variant, step, generator)'s median over its seeds (a seed's
    first run), the comparison the docs lead with: one seed's luck is not a lever."""
    groups: dict[tuple, dict[int, dict]] = {}
    for row in rows:
        groups.setdefault((row["variant"], row["step"], row["generator"]), {}).setdefault(
            row["seed"], row)
    columns = MEDIAN_COLUMNS + (MEDIAN_COVERAGE_COLUMNS
                                if any("mode_kl" in row for row in rows) else ())
    print("\n| variant | step | generator | seeds | "
          + " | ".join(f"median {heading}" for heading, _, _ in columns) + " |")
    print("|---|---|---|---|" + "---|" * len(columns))
    for (variant, step, generator), by_seed in groups.items():
        medians = [fmt.format(float(np.median([row[key] for row in by_seed.values()])))
                   for _, key, fmt in columns]
        print(f"| {variant} | {step:,} | {generator} | {len(by_seed)} | "
              + " | ".join(medians) + " |")


if __name__ == "__main__":
    main()
