"""How sure the classifier is of each digit: the histogram of its top-class probability per
sample, real eval images against exported generators.

    python -m bench.confidence_histogram --run-output-dir runs/local \\
        --generator before=runs/local/serving/dcgan_mnist/<version> \\
        --generator after=runs/default/serving/dcgan_mnist/<version> \\
        --out docs/confidence_histogram.png

A readable digit gets a top-class probability near 1; a sample between digits spreads its
probability. RUN_OUTPUT_DIR gives the classifier and the eval images (as the Evaluator uses
them); every generator draws --samples samples with seeds 0..N-1 through its `generate`
signature. Prints the share of samples per bin and writes the chart (PNG) and the numbers
(JSON beside it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

import numpy as np

from bench.plotting import plot_panels
from components.sample_quality_evaluator import generate_samples, to_unit_range
from dcgan_common import embedding
from dcgan_common.config import preset
from dcgan_common.examples import load_arrays
from pipeline import metadata
from pipeline import pipeline as pipeline_def

BINS = 20  # Equal-width bins of [0, 1]; the top-class probability of 10 classes is >= 0.1.
SURE = (0.5, 0.9, 0.99)  # Reported shares of samples at or above these probabilities.


def top_class_probability(embed_fn, images: np.ndarray) -> np.ndarray:
    """[N] the classifier's largest class probability for each float image in [-1, 1]."""
    _, probabilities = embedding.embed(embed_fn, images)
    return probabilities.max(axis=1)


def summary(top: np.ndarray) -> dict:
    shares, _ = np.histogram(top, bins=BINS, range=(0.0, 1.0))
    return {"bin_shares": (shares / len(top)).round(5).tolist(),
            **{f"share_at_least_{p}": round(float(np.mean(top >= p)), 5) for p in SURE},
            "mean": round(float(top.mean()), 5)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-output-dir", default="runs/local")
    parser.add_argument("--generator", action="append", required=True,
                        help="NAME=SAVED_MODEL_DIR (repeatable)")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--out", default="runs/confidence_histogram.png")
    args = parser.parse_args()
    generators = dict(text.split("=", 1) for text in args.generator)

    config = dataclasses.replace(preset("default"),
                                 output_dir=os.path.abspath(args.run_output_dir))
    run = metadata.latest_outputs(config)
    embed_fn = embedding.load_embed_fn(run[(pipeline_def.CLASSIFIER_NODE_ID, "Model")].uri)
    real, _ = load_arrays([os.path.join(run[("Transform", "Examples")].uri, "Split-eval", "*")],
                          args.samples)
    results = {"real eval images": summary(top_class_probability(embed_fn, real))}
    for name, directory in generators.items():
        samples, _ = generate_samples(directory, np.arange(args.samples, dtype=np.int64))
        results[name] = {"generator": directory,
                         **summary(top_class_probability(embed_fn, to_unit_range(samples)))}

    centres = (np.arange(BINS) + 0.5) / BINS
    plot_panels({f"share of samples per top-class probability bin (N = {args.samples})": {
        name: dict(zip(centres, result["bin_shares"])) for name, result in results.items()}},
        args.out)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump({"samples": args.samples, "bins": BINS, "results": results}, f, indent=1)
    print(f"{'':28s} {'mean':>6s} " + " ".join(f">={p:<5}" for p in SURE))
    for name, result in results.items():
        print(f"{name:28s} {result['mean']:6.3f} " + " ".join(
            f"{result[f'share_at_least_{p}']:6.3f}" for p in SURE))
    print(f"chart in {args.out}")


if __name__ == "__main__":
    main()
