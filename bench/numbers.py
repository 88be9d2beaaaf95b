"""The README's numbers table, rendered from the committed benchmark reports, so no figure in
it can drift from the report it comes from.

    python -m bench.numbers           # rewrites the table in README.md
    python -m bench.numbers --check   # exit 1 if README.md differs from what is rendered

Each row names its report; each report records its command, commit, date and machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

from bench.provenance import ROOT

README = os.path.join(ROOT, "README.md")
BEGIN, END = "<!-- numbers:begin (python -m bench.numbers) -->", "<!-- numbers:end -->"
SEEDS_REPORT = "docs/reports/quality_default_seeds.json"
ONE_RUN_PRESETS = ("full", "conditional", "spec")  # docs/bench_quality_<preset>/report.json
# Equal objective first (`spec`: the reference trains exactly its objective), then `default`.
TRAIN_REPORTS = ("docs/reports/bench_train_spec.json", "docs/reports/bench_train_default.json")
SERVING_REPORT = "docs/reports/bench_serving.json"
# Stacked MNIST: the preset over seeds (`bench.quality_seeds`; the earlier presets' are in
# docs/stacked_mnist.md), then the recipe on the same data.
STACKED_SEED_REPORTS = ("docs/reports/stacked/stacked_head_seeds.json",)
STACKED_REPORTS = (("the recipe on Stacked MNIST (`spec`)",
                    "docs/reports/stacked/spec_3000_seed0/report.json"),)


def _load(path: str) -> dict | None:
    full = os.path.join(ROOT, path)
    if not os.path.exists(full):
        return None
    with open(full, encoding="utf-8") as f:
        return json.load(f)


def _link(path: str) -> str:
    name = os.path.dirname(path) if path.endswith("report.json") else path
    return f"[{os.path.basename(name)}]({path})"


def _source(report: dict) -> str:
    machine = report["machine"]
    flags = ", ".join(machine["flags"]) or "no AVX2"
    return (f"{report['date'][:10]}, {report['commit'][:7]}"
            f"{' (+ uncommitted)' if report.get('uncommitted_changes') else ''}, "
            f"{machine['cpu']}, {machine['cores']} cores ({flags}), "
            f"{machine['gpus'] or 'no'} GPU")


def _range(spread: dict, fmt: str, unit: str = "") -> str:
    """median (min-max), each with its unit."""
    return (f"{format(spread['median'], fmt)}{unit} "
            f"({format(spread['min'], fmt)}{unit}-{format(spread['max'], fmt)}{unit})")


def rows() -> list[str]:
    """One Markdown table row per figure the README states."""
    found = []
    seeds = _load(SEEDS_REPORT)
    if seeds:
        spread, count = seeds["spread"], len(seeds["runs"])
        found.append(
            f"| `{seeds['preset']}` (`make run`), median (range) of {count} seeds | "
            f"FID {_range(spread['fid_to_floor'], '.2f', 'x')} the floor, MNIST score "
            f"{_range(spread['mnist_score'], '.2f')}; "
            f"{sum(run['verdict'] == 'BLESSED' for run in seeds['runs'])} of {count} blessed | "
            f"{_link(SEEDS_REPORT)}: {_source(seeds)} |")
        found.append(
            f"| `make run` wall time, median (range) of {count} | "
            f"{_range({k: v / 60 for k, v in spread['wall_time_s'].items()}, '.1f', ' min')}"
            f"{'; ' + seeds['note'] if seeds.get('note') else ''} | "
            f"{_link(SEEDS_REPORT)} |")
    for preset in ONE_RUN_PRESETS:
        path = f"docs/bench_quality_{preset}/report.json"
        report = _load(path)
        if not report:
            continue
        metrics = _load(f"docs/bench_quality_{preset}/metrics.json")["metrics"]
        accuracy = (f", conditional accuracy {metrics['conditional_accuracy']:.1%}"
                    if "conditional_accuracy" in metrics else "")
        found.append(
            f"| `{preset}`, one run ({report['train_steps']:,} steps, seed {report['seed']}) | "
            f"FID {report['fid_to_floor']:.2f}x the floor, MNIST score "
            f"{report['mnist_score']:.2f}{accuracy}; {report['verdict']} | "
            f"{_link(path)}: {_source(report)} |")
    found.extend(stacked_seed_rows())
    for what, path in STACKED_REPORTS:
        report = _load(path)
        if not report:
            continue
        found.append(
            f"| {what}, one run ({report['train_steps']:,} steps, seed {report['seed']}) | "
            f"{report['modes_covered']} of {report['dataset_modes']:,} modes, KL "
            f"{report['mode_kl']:.3f} (real data {report['floor_mode_kl']:.3f}), FID "
            f"{report['fid_to_floor']:.0f}x the floor, "
            f"{report['confident_share']:.0%} of samples legible in every channel; "
            f"{report['verdict']} | {_link(path)}: {_source(report)} |")
    for path in TRAIN_REPORTS:
        train = _load(path)
        if not train:
            continue
        flops = train["flops"]
        configured = "project_configured" if "project_configured" in flops else "project_float32"
        leaves_out = ", ".join(train["reference_leaves_out"]) or "nothing"
        found.append(
            f"| training speed, `{train['preset']}` against the tutorial-style loop "
            f"(which leaves out: {leaves_out}) | "
            f"{train['ratio_equal_precision']:.2f}x its images/s, both in float32; "
            f"{train['ratio_configured']:.2f}x as configured "
            f"({train['precision'][configured]}); the step reaches "
            f"{flops[configured]['fraction_of_matmul_rate']:.0%} of this CPU's "
            f"{train['precision'][configured]} matmul rate | "
            f"{_link(path)}: {_source(train)} |")
    serving = _load(SERVING_REPORT)
    if serving:
        latency = serving["latency"]
        found.append(
            f"| serving latency, p50 for 1 / 64 images | gRPC "
            f"{latency['gRPC count=1']['p50_ms']:.1f} / {latency['gRPC count=64']['p50_ms']:.1f}"
            f" ms, REST {latency['REST count=1']['p50_ms']:.1f} / "
            f"{latency['REST count=64']['p50_ms']:.1f} ms, in-process "
            f"{latency['in-process count=1']['p50_ms']:.1f} / "
            f"{latency['in-process count=64']['p50_ms']:.1f} ms | "
            f"{_link(SERVING_REPORT)}: {_source(serving)} |")
    return found


def _spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def stacked_seed_rows() -> list[str]:
    """The `stacked` preset's coverage over every seed of STACKED_SEED_REPORTS, and the wall
    time of the `dcgan-pipeline` runs among them."""
    runs, sources, wall = [], [], None
    for path in STACKED_SEED_REPORTS:
        report = _load(path)
        if not report:
            continue
        runs.extend(report.get("runs", [report]))
        sources.append(f"{_link(path)}: {_source(report)}")
        if "runs" in report:
            wall = (path, report)
    if not runs:
        return []
    count = len(runs)

    def spread(name: str, fmt: str, unit: str = "", scale: float = 1.0) -> str:
        return _range(_spread([run[name] * scale for run in runs]), fmt, unit)

    verdicts = ", ".join(f"seed {run['seed']} {run['verdict']}" for run in runs)
    found = [
        f"| `stacked`, median (range) of {count} seeds | {spread('modes_covered', '.0f')} of "
        f"1,000 modes, KL {spread('mode_kl', '.3f')} (real data "
        f"{statistics.median(run['floor_mode_kl'] for run in runs):.3f}), FID "
        f"{spread('fid_to_floor', '.0f', 'x')} the floor, MNIST score "
        f"{spread('mnist_score', '.2f')}, legible in every channel "
        f"{spread('confident_share', '.0f', '%', 100)}; {verdicts} | {'; '.join(sources)} |"]
    if wall:
        path, report = wall
        times = [run["wall_time_s"] / 60 for run in report["runs"]]
        found.append(
            f"| `dcgan-pipeline --preset stacked` wall time, seeds "
            f"{', '.join(str(run['seed']) for run in report['runs'])} | "
            f"{' / '.join(f'{t:.1f} min' for t in times)}"
            f"{'; ' + report['note'] if report.get('note') else ''} | {_link(path)} |")
    return found


def render() -> str:
    """The table, between its markers."""
    return "\n".join([BEGIN, "| what | measured | report: date, commit, machine |",
                      "|---|---|---|", *rows(), END])


def rendered_readme(text: str) -> str:
    """`text` (the README) with its table replaced by the rendered one."""
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + render() + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    with open(README, encoding="utf-8") as f:
        text = f.read()
    expected = rendered_readme(text)
    if args.check:
        if expected != text:
            print("README.md's numbers differ from their reports: run python -m bench.numbers",
                  file=sys.stderr)
            return 1
        return 0
    with open(README, "w", encoding="utf-8") as f:
        f.write(expected)
    return 0


if __name__ == "__main__":
    sys.exit(main())
