"""Where a Stacked MNIST mode KL comes from: each channel's uneven digits, or channels whose
digits go together (quality_metrics.mode_kl_split), for the generator and its real-data floor
of each Evaluator metrics.json given, beside what sampling alone leaves at that count; then
each channel's digit shares (which digits are drawn too often).

    python -m bench.mode_split docs/bench_quality_stacked/metrics.json
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from dcgan_common.features import NUM_CLASSES
from dcgan_common.quality_metrics import mode_kl_split


def split_row(name: str, counts: list[int]) -> str:
    split = mode_kl_split(counts)
    channel_kl = " + ".join(f"{value:.4f}" for value in split["channel_kl"])
    return (f"| {name} | {sum(value > 0 for value in counts)} | {split['mode_kl']:.4f} | "
            f"{channel_kl} | {split['mode_dependence']:.4f} |")


def digit_shares(counts: list[int]) -> list[str]:
    """Each channel's digit shares in percent, digits 0-9 (channel 0 is the leading digit)."""
    channels = len(mode_kl_split(counts)["channel_kl"])
    joint = np.asarray(counts, float).reshape((NUM_CLASSES,) * channels)
    joint /= joint.sum()
    return [" ".join(f"{100 * share:.1f}" for share in joint.sum(
                axis=tuple(a for a in range(channels) if a != c)))
            for c in range(channels)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics", nargs="+", help="SampleQualityEvaluator metrics.json files")
    args = parser.parse_args(argv)
    reports = {}
    for path in args.metrics:
        with open(path, encoding="utf-8") as f:
            reports[path] = json.load(f)
        if "mode_counts" not in reports[path]["metrics"]:
            raise SystemExit(f"{path}: no mode_counts (not a Stacked MNIST evaluation)")
    print("| samples | modes | mode KL | digits: KL per channel | dependence |")
    print("|---|---|---|---|---|")
    for path, report in reports.items():
        counts = report["metrics"]["mode_counts"]
        samples, modes = sum(counts), len(counts)
        channels = len(mode_kl_split(counts)["channel_kl"])
        print(split_row(f"{path}: generated", counts))
        print(split_row(f"{path}: real-data floor", report["floor"]["mode_counts"]))
        print(f"| sampling alone, {samples:,} samples | {modes} | "
              f"{(modes - 1) / (2 * samples):.4f} | {9 / (2 * samples):.4f} per channel | "
              f"{(modes - 1 - 9 * channels) / (2 * samples):.4f} |")
    print("\n| samples | channel | share of each digit 0-9, % |\n|---|---|---|")
    for path, report in reports.items():
        for channel, shares in enumerate(digit_shares(report["metrics"]["mode_counts"])):
            print(f"| {path}: generated | {channel} | {shares} |")


if __name__ == "__main__":
    main()
