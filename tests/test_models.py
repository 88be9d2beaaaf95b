"""The DCGAN architecture of the specification, and the configuration it is built from."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from dcgan_common.config import (PRESETS, AveragingConfig, ModelConfig, ObjectiveConfig,
                                 OptimizerConfig, TrainerConfig)
from trainer.models import build_discriminator, build_generator
from settings import trainer_config, with_settings

CONFIG = trainer_config(generator_filters=(128, 64), discriminator_filters=(64, 128))


def layer_types(model):
    """Keras' class of each layer (trainer/strided_conv.py's layers count as the convolutions
    they compute)."""
    return [next(c.__name__ for c in type(layer).__mro__ if c.__module__.startswith("keras."))
            for layer in model.layers]


def test_generator_projects_reshapes_and_upsamples_to_28x28_tanh():
    generator = build_generator(CONFIG)
    assert generator.input_shape == (None, 100)
    assert generator.output_shape == (None, 28, 28, 1)
    reshape = next(l for l in generator.layers if isinstance(l, keras.layers.Reshape))
    assert reshape.output.shape[1:] == (7, 7, 128)
    transposed = [l for l in generator.layers if isinstance(l, keras.layers.Conv2DTranspose)]
    assert [l.strides for l in transposed] == [(2, 2), (2, 2)]
    assert all(l.kernel_size == (5, 5) and l.padding == "same" for l in transposed)
    assert transposed[-1].activation is keras.activations.tanh
    # Every hidden layer: BatchNorm then ReLU.
    assert layer_types(generator).count("BatchNormalization") == 2
    assert layer_types(generator).count("ReLU") == 2
    images = generator(tf.random.normal([4, 100]) * 10, training=False).numpy()
    assert images.min() >= -1.0 and images.max() <= 1.0


def test_generator_extra_layers_and_filters_are_configurable():
    config = with_settings(CONFIG, generator_filters=(32, 16), generator_extra_layers=1,
                           z_dim=64)
    generator = build_generator(config)
    assert generator.input_shape == (None, 64)
    transposed = [l for l in generator.layers if isinstance(l, keras.layers.Conv2DTranspose)]
    assert [(l.filters, l.strides) for l in transposed] == [
        (32, (1, 1)), (16, (2, 2)), (16, (1, 1)), (1, (2, 2))]
    assert generator.output_shape == (None, 28, 28, 1)


def test_discriminator_strided_convs_no_pooling_bn_not_on_first_and_last():
    discriminator = build_discriminator(CONFIG)
    types = layer_types(discriminator)
    assert discriminator.output_shape == (None, 1)
    assert not any("Pool" in t for t in types)
    convs = [l for l in discriminator.layers if isinstance(l, keras.layers.Conv2D)]
    assert [(l.filters, l.strides, l.kernel_size) for l in convs] == [
        (64, (2, 2), (5, 5)), (128, (2, 2), (5, 5))]
    # Input, conv, LeakyReLU (no BN on the first layer), conv, BN, LeakyReLU, flatten, logit.
    assert types == ["InputLayer", "Conv2D", "LeakyReLU", "Conv2D", "BatchNormalization",
                     "LeakyReLU", "Flatten", "Dense"]
    assert all(l.negative_slope == pytest.approx(0.2)
               for l in discriminator.layers if isinstance(l, keras.layers.LeakyReLU))
    dense = [l for l in discriminator.layers if isinstance(l, keras.layers.Dense)]
    assert len(dense) == 1 and dense[0].units == 1 and dense[0].activation is keras.activations.linear


def test_generator_filters_must_fit_28x28():
    with pytest.raises(ValueError, match="generator_filters needs 2 entries"):
        trainer_config(generator_filters=(64, 32, 16))


def test_config_round_trips_through_custom_config():
    restored = TrainerConfig.from_dict(CONFIG.to_dict())
    assert restored == CONFIG
    with pytest.raises(ValueError, match="unknown TrainerConfig settings: \\['nope'\\]"):
        TrainerConfig.from_dict({"nope": 1})
    assert np.isclose(restored.optimizer.learning_rate, 2e-4) and restored.optimizer.beta_1 == 0.5


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_presets_config_round_trips_through_json(name):
    """What the Trainer receives: custom_config as JSON text, read back strictly."""
    config = PRESETS[name].trainer
    assert TrainerConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize("flat, path", [("train_steps", "optimizer.train_steps"),
                                        ("r1_weight", "objective.r1_weight"),
                                        ("ema_decay", "averaging.ema_decay"),
                                        ("z_dim", "model.z_dim"),
                                        ("seed", "runtime.seed")])
def test_a_setting_from_before_the_groups_is_refused_with_its_new_place(flat, path):
    with pytest.raises(ValueError, match=f"unknown TrainerConfig settings: \\['{flat}'\\] "
                                         f"\\({flat} is now {path}\\)"):
        TrainerConfig.from_dict({**CONFIG.to_dict(), flat: 1})


def test_a_group_refuses_a_setting_of_another_group():
    values = CONFIG.to_dict()
    values["model"]["train_steps"] = 5
    with pytest.raises(ValueError, match="unknown ModelConfig settings: \\['train_steps'\\]"):
        TrainerConfig.from_dict(values)
    with pytest.raises(ValueError, match="unknown TrainerConfig groups: \\['models'\\]"):
        CONFIG.replace(models={"z_dim": 3})


def test_each_group_validates_its_own_settings_and_the_config_what_spans_two():
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        OptimizerConfig(batch_size=0)
    with pytest.raises(ValueError, match="ema_decay must be in \\[0, 1\\), got 1.0"):
        AveragingConfig(ema_decay=1.0)
    with pytest.raises(ValueError, match="real_cluster_weight needs latent_categories"):
        TrainerConfig(objective=ObjectiveConfig(real_cluster_weight=1.0))


def test_presets_are_short_differences_from_spec():
    """`default` differs from `spec` in the groups its comment names, and `full` from
    `default` only in how long it trains and logs."""
    spec, default, full = (PRESETS[name].trainer for name in ("spec", "default", "full"))
    assert spec.model == ModelConfig() and spec.objective == ObjectiveConfig()
    assert default.replace(optimizer={"train_steps": 10_000},
                           runtime={"log_every_steps": 200, "sample_every_steps": 1000}) == full
