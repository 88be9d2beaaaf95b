"""Where a Stacked MNIST mode KL comes from: each channel's uneven digits, or channels whose
digits go together (quality_metrics.mode_kl_split), for the generator and its real-data floor
of each Evaluator metrics.json given, beside what sampling alone leaves at that count.

    python -m bench.mode_split docs/bench_quality_stacked/metrics.json
"""

from __future__ import annotations

import argparse
import json

from dcgan_common.quality_metrics import mode_kl_split


def split_row(name: str, counts: list[int]) -> str:
    split = mode_kl_split(counts)
    channel_kl = " + ".join(f"{value:.4f}" for value in split["channel_kl"])
    return (f"| {name} | {sum(value > 0 for value in counts)} | {split['mode_kl']:.4f} | "
            f"{channel_kl} | {split['mode_dependence']:.4f} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics", nargs="+", help="SampleQualityEvaluator metrics.json files")
    args = parser.parse_args(argv)
    print("| samples | modes | mode KL | digits: KL per channel | dependence |")
    print("|---|---|---|---|---|")
    for path in args.metrics:
        with open(path, encoding="utf-8") as f:
            report = json.load(f)
        if "mode_counts" not in report["metrics"]:
            raise SystemExit(f"{path}: no mode_counts (not a Stacked MNIST evaluation)")
        counts = report["metrics"]["mode_counts"]
        samples, modes = sum(counts), len(counts)
        channels = len(mode_kl_split(counts)["channel_kl"])
        print(split_row(f"{path}: generated", counts))
        print(split_row(f"{path}: real-data floor", report["floor"]["mode_counts"]))
        print(f"| sampling alone, {samples:,} samples | {modes} | "
              f"{(modes - 1) / (2 * samples):.4f} | {9 / (2 * samples):.4f} per channel | "
              f"{(modes - 1 - 9 * channels) / (2 * samples):.4f} |")


if __name__ == "__main__":
    main()
