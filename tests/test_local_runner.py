"""dcgan-pipeline's command line: presets, overrides and a clear error for a bad directory."""

import os

import pytest

from dcgan_common.config import preset
from pipeline import console
from settings import with_settings


@pytest.fixture(autouse=True)
def no_mnist_dir_from_the_environment(monkeypatch):
    """The tests give --mnist-dir themselves; CI's MNIST_DIR must not leak into the defaults."""
    monkeypatch.delenv("MNIST_DIR", raising=False)


def test_overrides_apply_on_top_of_the_preset(tmp_path, mnist_slice):
    args = console.parse_args(["--mnist-dir", mnist_slice, "--output-dir", str(tmp_path),
                                    "--preset", "smoke", "--train-steps", "7",
                                    "--batch-size", "16"])
    config = console.config_from_args(args)
    assert config.trainer.optimizer.train_steps == 7 and config.trainer.optimizer.batch_size == 16
    assert config.trainer.model.generator_filters == (32, 16)  # The rest is the smoke preset's.
    assert config.mnist_dir == mnist_slice and config.output_dir == str(tmp_path)


def test_mnist_dir_defaults_to_the_environment(monkeypatch, mnist_slice):
    monkeypatch.setenv("MNIST_DIR", mnist_slice)
    assert console.parse_args([]).mnist_dir == mnist_slice
    monkeypatch.delenv("MNIST_DIR")
    assert console.parse_args([]).mnist_dir == ""  # tensorflow-datasets.


def test_a_missing_mnist_dir_is_refused_before_anything_runs(tmp_path):
    args = console.parse_args(["--mnist-dir", str(tmp_path / "nope"),
                                    "--output-dir", str(tmp_path / "out")])
    with pytest.raises(SystemExit, match="nope: not a directory"):
        console.config_from_args(args)
    assert not os.path.exists(tmp_path / "out")


def test_unknown_preset_and_strategy_are_refused(tmp_path):
    with pytest.raises(SystemExit):
        console.parse_args(["--preset", "huge"])
    args = console.parse_args(["--strategy", "tpu-pod", "--output-dir", str(tmp_path)])
    with pytest.raises(ValueError, match="strategy must be one of"):
        console.config_from_args(args)


def test_precision_flag(tmp_path):
    args = console.parse_args(["--mixed-precision", "mixed_bfloat16",
                                    "--output-dir", str(tmp_path)])
    assert console.config_from_args(args).trainer.runtime.mixed_precision == "mixed_bfloat16"
    assert console.config_from_args(console.parse_args(
        ["--output-dir", str(tmp_path)])).trainer.runtime.mixed_precision == "auto"
    args = console.parse_args(["--mixed-precision", "bf16", "--output-dir", str(tmp_path)])
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        console.config_from_args(args)


def test_conditional_preset_and_flag(tmp_path):
    by_preset = console.config_from_args(console.parse_args(
        ["--preset", "conditional", "--output-dir", str(tmp_path)]))
    by_flag = console.config_from_args(console.parse_args(
        ["--conditional", "--output-dir", str(tmp_path)]))
    assert by_flag.trainer.model.conditional and by_preset.trainer.model.conditional
    # The preset is the flag on `default` with the budget that reaches 98% accuracy
    # (docs/pipeline.md).
    assert by_preset.trainer.optimizer.train_steps == 10_000
    assert by_flag.trainer.optimizer.train_steps == preset("default").trainer.optimizer.train_steps
    assert by_preset.trainer == with_settings(by_flag.trainer, train_steps=10_000)
    # `default`'s unsupervised latent code gives way to the labels (the config refuses both),
    # and its learning rate, measured with the code, to the recipe's.
    assert preset("default").trainer.model.latent_categories == 10
    assert preset("default").trainer.objective.real_cluster_weight > 0
    assert preset("default").trainer.objective.cluster_consistency_weight > 0
    assert preset("default").trainer.optimizer.learning_rate == 4e-4
    for trainer in (by_flag.trainer, by_preset.trainer):
        assert trainer.model.latent_categories == 0 and trainer.objective.real_cluster_weight == 0
        assert trainer.objective.cluster_consistency_weight == 0
        assert trainer.optimizer.learning_rate == preset("spec").trainer.optimizer.learning_rate == 2e-4
