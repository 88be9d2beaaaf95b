"""Stacked MNIST (issue 30): the stacking, the mode counting, the byte bounds, the channels of
the data through Transform, the Trainer and the signatures."""

import json
import math
import os
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats
from tensorflow_serving.apis import predict_pb2

from components import mnist_idx
from components.mnist_example_gen import build_dataset
from dcgan_common import datasets, features, quality_metrics
from dcgan_common.config import preset, with_dataset
from pipeline import local_runner
from pipeline import pipeline as pipeline_def
from pipeline.metadata import live_artifacts
from conftest import MNIST_SLICE
from pipeline_helpers import pushed_versions, read_examples, smoke_config, split_pattern
from serving import client as client_lib
from serving_helpers import MODEL, serving

ONE_HOT = np.eye(10)


def digits(count: int = 250, seed: int = 0) -> mnist_idx.MnistSplit:
    """Fake digits, told apart by their fill: image i is filled with i % 256; labels uniform."""
    rng = np.random.default_rng(seed)
    images = (np.arange(count) % 256).astype(np.uint8)[:, None, None] * np.ones(
        (1, 28, 28), np.uint8)
    return mnist_idx.MnistSplit(images, rng.integers(0, 10, count).astype(np.int64))


def test_stacking_is_deterministic_and_each_channel_is_a_source_digit_with_its_label():
    source = digits()
    images, labels = datasets.stack(source.images, source.labels, 2000, 3, seed=[7, 0])
    again, again_labels = datasets.stack(source.images, source.labels, 2000, 3, seed=[7, 0])
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(labels, again_labels)
    other, _ = datasets.stack(source.images, source.labels, 2000, 3, seed=[8, 0])
    assert not np.array_equal(images, other)
    assert images.shape == (2000, 28, 28, 3) and images.dtype == np.uint8
    assert len(images[0].tobytes()) == datasets.dataset("stacked_mnist").image_bytes
    for image, triple in zip(images, datasets.digits_of(labels, 3)):
        for channel in range(3):
            source_index = image[0, 0, channel]  # The fill says which digit was drawn.
            np.testing.assert_array_equal(image[..., channel], source.images[source_index])
            assert triple[channel] == source.labels[source_index]


def test_the_channels_are_drawn_independently():
    source = digits(256)
    _, labels = datasets.stack(source.images, source.labels, 20_000, 3, seed=[0, 0])
    triples = datasets.digits_of(labels, 3)
    for a, b in ((0, 1), (0, 2), (1, 2)):
        table = np.zeros((10, 10))
        np.add.at(table, (triples[:, a], triples[:, b]), 1)
        assert stats.chi2_contingency(table).pvalue > 1e-3, (a, b)
    # Dependent channels (all three the same digit) are caught by the same test.
    table = np.zeros((10, 10))
    np.add.at(table, (triples[:, 0], triples[:, 0]), 1)
    assert stats.chi2_contingency(table + 1e-9).pvalue < 1e-3


def test_label_is_the_triple_as_one_number():
    triples = np.array([[0, 0, 0], [1, 2, 3], [9, 9, 9], [0, 5, 0]])
    np.testing.assert_array_equal(datasets.mode_of(triples), [0, 123, 999, 50])
    np.testing.assert_array_equal(datasets.digits_of(np.array([0, 123, 999, 50]), 3), triples)


def test_example_gen_builds_stacked_splits_from_each_splits_own_digits():
    train, test = digits(300, seed=1), digits(100, seed=2)
    built = build_dataset({"train": train, "eval": test}, "stacked_mnist", seed=0)
    assert built["train"].images.shape == (300, 28, 28, 3)
    assert built["eval"].images.shape == (100, 28, 28, 3)
    assert set(np.unique(built["eval"].images[:, 0, 0, :])) <= set(test.images[:, 0, 0])
    assert build_dataset({"train": train}, "mnist", seed=0)["train"] is train
    with pytest.raises(ValueError, match="unknown dataset 'x'"):
        build_dataset({"train": train}, "x", seed=0)


def channel_probabilities(triples: np.ndarray) -> np.ndarray:
    return ONE_HOT[triples]  # [N, 3, 10], certain.


def test_mode_counting_all_modes_evenly():
    triples = datasets.digits_of(np.repeat(np.arange(1000), 26), 3)
    coverage = quality_metrics.mode_coverage(channel_probabilities(triples))
    assert coverage["modes_covered"] == 1000 and coverage["num_modes"] == 1000
    assert coverage["mode_kl"] == pytest.approx(0.0, abs=1e-12)
    assert coverage["confident_share"] == 1.0 and sum(coverage["mode_counts"]) == 26_000


def test_mode_counting_one_mode_only():
    coverage = quality_metrics.mode_coverage(channel_probabilities(
        np.tile([[4, 0, 7]], (26_000, 1))))
    assert coverage["modes_covered"] == 1
    assert coverage["mode_kl"] == pytest.approx(math.log(1000))
    assert coverage["mode_counts"][407] == 26_000


def test_mode_counting_a_known_skew():
    """Half the samples on mode 3, the rest spread evenly over all 1,000: KL by hand."""
    modes = np.concatenate([np.full(10_000, 3), np.repeat(np.arange(1000), 10)])
    coverage = quality_metrics.mode_coverage(channel_probabilities(datasets.digits_of(modes, 3)))
    p3, p_other = 10_010 / 20_000, 10 / 20_000
    expected = p3 * math.log(p3 * 1000) + 999 * p_other * math.log(p_other * 1000)
    assert coverage["modes_covered"] == 1000
    assert coverage["mode_kl"] == pytest.approx(expected)


def test_mode_kl_splits_into_uneven_digits_and_dependent_channels():
    """Independent channels with channel 0 skewed: all of the KL is channel 0's; every channel
    the same digit (evenly): each channel is even, and all the KL is dependence, 2 log 10."""
    rng = np.random.default_rng(0)
    skewed = np.stack([rng.choice(10, 200_000, p=[0.3] + [0.7 / 9] * 9),
                       rng.integers(0, 10, 200_000), rng.integers(0, 10, 200_000)], 1)
    coverage = quality_metrics.mode_coverage(channel_probabilities(skewed))
    expected = 0.3 * math.log(3) + 0.7 * math.log(0.7 / 0.9)
    assert coverage["channel_kl"][0] == pytest.approx(expected, rel=0.02)
    assert coverage["channel_kl"][1] < 1e-3 and coverage["mode_dependence"] < 5e-3
    assert coverage["mode_kl"] == pytest.approx(sum(coverage["channel_kl"])
                                                + coverage["mode_dependence"])
    same = quality_metrics.mode_coverage(channel_probabilities(
        np.repeat(np.arange(10), 3000)[:, None].repeat(3, 1)))
    assert same["channel_kl"] == pytest.approx([0.0] * 3, abs=1e-12)
    assert same["mode_dependence"] == pytest.approx(2 * math.log(10))


def test_an_illegible_channel_is_not_confident():
    probabilities = channel_probabilities(np.array([[1, 2, 3], [4, 5, 6]]))
    probabilities[1, 2] = np.full(10, 0.1)  # A blur: every digit equally likely.
    assert quality_metrics.mode_coverage(probabilities)["confident_share"] == 0.5


def test_the_dataset_setting_and_its_sample_count():
    stacked = with_dataset(preset("default"), "stacked_mnist")
    assert stacked.dataset == "stacked_mnist" and stacked.evaluator.num_samples == 26_000
    assert with_dataset(preset("smoke"), "stacked_mnist").evaluator.num_samples == 500
    assert preset("stacked").evaluator.num_samples == 26_000
    with pytest.raises(ValueError, match="conditional generator draws single MNIST digits"):
        with_dataset(preset("conditional"), "stacked_mnist")


@pytest.fixture(scope="module")
def stacked_run(tmp_path_factory):
    """The smoke pipeline on Stacked MNIST built from the committed slice, end to end."""
    config = with_dataset(smoke_config(MNIST_SLICE, tmp_path_factory.mktemp("stacked")),
                          "stacked_mnist")
    summary = local_runner.run(config)
    return {"config": config, "summary": summary}


def test_stacked_examples_are_three_digits_of_2352_bytes_and_a_label_below_1000(stacked_run,
                                                                                 mnist_slice):
    (examples,) = live_artifacts(stacked_run["config"], "Examples")[:1]
    digits_by_split = {split: mnist_idx.load_split(mnist_slice, split)
                       for split in ("train", "eval")}
    for split, source in digits_by_split.items():
        records = read_examples(split_pattern(examples, split))
        assert len(records) == len(source.labels)  # As many examples as the split has digits.
        for record in records[:50]:
            image = np.frombuffer(record.features.feature[features.IMAGE_KEY].bytes_list.value[0],
                                  np.uint8)
            assert image.size == 2352
            (label,) = record.features.feature[features.LABEL_KEY].int64_list.value
            for channel, digit in enumerate(datasets.digits_of(np.array([label]), 3)[0]):
                pixels = image.reshape(28, 28, 3)[..., channel]
                matches = (source.images == pixels).all((1, 2))
                assert matches.any() and digit in source.labels[matches]


def test_the_generator_draws_and_serves_rgb_images(stacked_run):
    config = stacked_run["config"]
    (version,) = pushed_versions(config)
    path = os.path.join(pipeline_def.serving_model_dir(config), version)
    with serving(os.path.dirname(path)) as served:
        request = predict_pb2.PredictRequest(model_spec={"name": MODEL,
                                                          "signature_name": "generate"})
        request.inputs["seed"].CopyFrom(tf.make_tensor_proto(np.arange(4, dtype=np.int64)))
        response = served["predict"].Predict(request, timeout=60)
        images = tf.make_ndarray(response.outputs["images"])
        assert images.shape == (4, 28, 28, 3) and images.dtype == np.uint8
        png = tf.make_ndarray(response.outputs["png_bytes"])[0]
        np.testing.assert_array_equal(tf.io.decode_png(png).numpy(), images[0])
        body = json.dumps({"instances": np.zeros((2, 100)).tolist()}).encode()
        with urllib.request.urlopen(urllib.request.Request(
                f"{served['rest']}/v1/models/{MODEL}:predict", data=body), timeout=60) as reply:
            rows = json.loads(reply.read())["predictions"]
        assert np.array(rows[0]["images"]).shape == (28, 28, 3)


def test_the_evaluator_reports_coverage_per_channel_fid_and_the_floor(stacked_run):
    (evaluation,) = live_artifacts(stacked_run["config"], "ModelEvaluation")
    with open(os.path.join(evaluation.uri, "metrics.json")) as f:
        report = json.load(f)
    metrics, floor = report["metrics"], report["floor"]
    assert metrics["num_modes"] == 1000 and 1 <= metrics["modes_covered"] <= 1000
    assert sum(metrics["mode_counts"]) == report["num_samples"]
    assert 0 <= metrics["mode_kl"] <= math.log(1000) + 1e-9
    assert len(metrics["fid_per_channel"]) == 3 and len(floor["fid_per_channel"]) == 3
    assert "mode_kl" in floor and 0 <= metrics["confident_share"] <= 1
    samples = tf.io.decode_png(tf.io.read_file(os.path.join(evaluation.uri, "samples.png")))
    assert samples.shape[-1] == 3  # The sample grid is in colour.


def test_dcgan_generate_writes_an_rgb_grid(stacked_run, tmp_path):
    (version,) = pushed_versions(stacked_run["config"])
    base = pipeline_def.serving_model_dir(stacked_run["config"])
    with serving(base) as served:
        grid = tmp_path / "grid.png"
        assert client_lib.main(["--server", f"127.0.0.1:{served['port']}", "--count", "9",
                                "--out", str(grid)]) == 0
    assert tf.io.decode_png(tf.io.read_file(str(grid))).shape == (3 * 28, 3 * 28, 3)
