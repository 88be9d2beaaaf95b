"""The one typed configuration of the pipeline, with named presets.

`TrainerConfig` travels to the Trainer's run_fn through `custom_config` (as a
plain dict), so every hyper-parameter lives here and nowhere else.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from dcgan_common import datasets
from dcgan_common.features import IMAGE_SIZE

# The Trainers' custom_config keys holding TrainerConfig / ClassifierConfig as dicts.
TRAINER_CONFIG_KEY = "trainer"
CLASSIFIER_CONFIG_KEY = "classifier"
TRANSFORM_CHANNELS_KEY = "channels"  # Transform's custom_config: image channels per example.
STRATEGIES = ("auto", "mirrored", "multi_worker", "tpu", "one_device")
FILTER_GRADIENTS = ("auto", "native", "forward_conv")
PRECISION_POLICIES = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
DISCRIMINATOR_NORMALIZATIONS = ("batch", "spectral")
# A challenger may be at most this much worse (FID) than the served model, whatever the preset.
MAX_FID_REGRESSION = 1.0


class _Settings:
    """custom_config travels as plain JSON-able dicts; these convert both ways, strictly."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown {cls.__name__} settings: {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def _at_least_one(settings: object, *names: str) -> None:
    for name in names:
        if getattr(settings, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(settings, name)}")


def _not_negative(settings: object, *names: str) -> None:
    for name in names:
        if not getattr(settings, name) >= 0:  # NaN fails too.
            raise ValueError(f"{name} must be >= 0, got {getattr(settings, name)}")


@dataclasses.dataclass(frozen=True)
class ModelConfig(_Settings):
    """The networks (trainer/models.py): the specification's DCGAN for 28x28 images, one digit
    per channel."""

    z_dim: int = 100
    # Image channels (one MNIST digit each): the Trainer takes it from the data it is given
    # (trainer/run.py), so a preset need not say it; 1 for MNIST, 3 for Stacked MNIST.
    channels: int = 1
    # Class-conditional (carpedm20's MNIST model): the one-hot label is concatenated to z
    # and to the generator's feature maps, and given to the discriminator as extra channels.
    conditional: bool = False
    # An unsupervised categorical code (InfoGAN, Chen et al. 2016) for an unconditional
    # generator, one per image channel: channel c's category = argmax of z's entries
    # c * K..(c + 1) * K - 1, K = `latent_categories` (uniform for a standard-normal z, so the
    # input stays the 100-d noise), given to the generator as one-hots beside z; a second
    # discriminator head recovers each from the image (the objective's latent-code term). No
    # label is involved. 0: none.
    latent_categories: int = 0
    # That head: () reads the discriminator's features; filters of strided convolutions
    # (as the discriminator's) give it a network of its own that reads each channel alone,
    # with the same weights for every channel, so a channel's category can only follow its
    # own digit (Stacked MNIST: each channel's digits clustered as MNIST's are).
    code_head_filters: tuple[int, ...] = ()
    # Generator: project z to 7x7xfilters[0], then stride-2 5x5 transposed
    # convolutions up to 28x28 (the last one to 1 channel, tanh).
    generator_filters: tuple[int, ...] = (128, 64)
    # Extra stride-1 5x5 convolutions after each upsampling of the generator.
    generator_extra_layers: int = 0
    # Discriminator: stride-2 5x5 convolutions, then one logit.
    discriminator_filters: tuple[int, ...] = (64, 128)
    # "batch": BatchNorm after every convolution but the first (the specification);
    # "spectral": no BatchNorm, every layer's kernel spectrally normalised instead (Miyato et
    # al. 2018, keras.layers.SpectralNormalization: one power iteration per step).
    discriminator_normalization: str = "batch"
    kernel_size: int = 5
    leaky_relu_slope: float = 0.2
    # PacGAN (Lin et al. 2018): the discriminator judges `pack` samples at once, stacked as
    # channels, real ones together and fake ones together; 1: one at a time (the recipe).
    pack: int = 1
    # ProGAN's minibatch standard deviation: one extra feature map before the discriminator's
    # logit holding how varied the batch is.
    minibatch_stddev: bool = False

    def __post_init__(self) -> None:
        _at_least_one(self, "z_dim", "channels", "pack")
        if self.pack > 1 and (self.conditional or self.latent_categories):
            raise ValueError("pack judges several samples with one logit: not with a label or a "
                             "latent code per sample (conditional, latent_categories)")
        if self.conditional and self.channels != 1:
            raise ValueError("a conditional generator draws one MNIST digit (channels 1), got "
                             f"channels {self.channels}")
        if self.latent_categories and self.conditional:
            raise ValueError("latent_categories is for unconditional generators; a conditional "
                             "one has its labels")
        if not 0 <= self.latent_categories * self.channels <= self.z_dim:
            raise ValueError(f"latent_categories must be in 0..z_dim / channels "
                             f"({self.z_dim // self.channels}), got {self.latent_categories}")
        if self.code_head_filters and not self.latent_categories:
            raise ValueError("code_head_filters needs latent_categories (the code it reads)")
        if any(width < 1 for width in self.code_head_filters):
            raise ValueError(f"code_head_filters must be >= 1 each, got {self.code_head_filters}")
        if self.discriminator_normalization not in DISCRIMINATOR_NORMALIZATIONS:
            raise ValueError(f"discriminator_normalization must be one of "
                             f"{DISCRIMINATOR_NORMALIZATIONS}, "
                             f"got {self.discriminator_normalization!r}")
        if len(self.generator_filters) != 2:
            raise ValueError("generator_filters needs 2 entries (7x7 and 14x14 feature maps) "
                             f"for 28x28 images, got {self.generator_filters}")


@dataclasses.dataclass(frozen=True)
class ObjectiveConfig(_Settings):
    """The losses: the adversarial ones' targets (trainer/gan.py) and the weights of the extra
    terms (trainer/terms/; a zero weight switches a term off)."""

    # One-sided label smoothing (Salimans et al. 2016): real targets 0.9, fake 0.0.
    real_target: float = 0.9
    fake_target: float = 0.0
    # The latent code's mutual-information term (needs model.latent_categories).
    latent_code_weight: float = 1.0
    # The code's head as a clusterer of the real images (CatGAN, IMSAT): this weight times
    # (the mean entropy of its prediction per real image - the entropy of its mean).
    real_cluster_weight: float = 0.0
    # IMSAT's self-augmentation: this weight times KL(p(real image) || p(the image shifted by
    # up to cluster_shift_pixels)). Needs real_cluster_weight.
    cluster_consistency_weight: float = 0.0
    cluster_shift_pixels: int = 2
    # R1 (Mescheder et al. 2018): r1_weight / 2 times the squared input gradient of the logit
    # at each real image; lazily (StyleGAN2) every r1_interval-th step, r1_interval times as heavy.
    r1_weight: float = 0.0
    r1_interval: int = 1

    def __post_init__(self) -> None:
        _at_least_one(self, "r1_interval")
        if self.latent_code_weight < 0:
            raise ValueError(f"latent_code_weight must be >= 0, got {self.latent_code_weight}")
        if self.cluster_consistency_weight and not self.real_cluster_weight:
            raise ValueError("cluster_consistency_weight needs real_cluster_weight (the "
                             "clustering it makes shift-invariant)")
        if not 0 < self.cluster_shift_pixels < IMAGE_SIZE // 2:
            raise ValueError(f"cluster_shift_pixels must be in 1..{IMAGE_SIZE // 2 - 1}, "
                             f"got {self.cluster_shift_pixels}")
        _not_negative(self, "r1_weight", "real_cluster_weight", "cluster_consistency_weight")


@dataclasses.dataclass(frozen=True)
class OptimizerConfig(_Settings):
    """How the networks are updated: one Adam each, the update schedule."""

    learning_rate: float = 2e-4
    beta_1: float = 0.5
    adam_epsilon: float = 1e-7  # Keras' default.
    batch_size: int = 64  # Global batch, split over the replicas.
    train_steps: int = 1000
    generator_steps: int = 2  # Generator updates per discriminator step.

    def __post_init__(self) -> None:
        _at_least_one(self, "batch_size", "train_steps", "generator_steps")


@dataclasses.dataclass(frozen=True)
class AveragingConfig(_Settings):
    """An exponential moving average of the generator's weights (Yazici et al. 2019) is what is
    exported, with BatchNorm statistics recomputed for the averaged weights. The decay ramps up
    as min(ema_decay, (1 + t) / (10 + t)) at update t, so the initial weights do not linger."""

    ema_decay: float = 0.0  # 0: no average; the trained generator is exported.
    ema_standing_samples: int = 4096  # Generated samples per BatchNorm statistics recompute.

    def __post_init__(self) -> None:
        _at_least_one(self, "ema_standing_samples")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")


@dataclasses.dataclass(frozen=True)
class RuntimeConfig(_Settings):
    """Where and how the training runs; none of it changes what is learned, but the seed."""

    # A Keras precision policy: "float32", "mixed_bfloat16" (CPUs with AVX512_BF16 or
    # AMX, TPUs) or "mixed_float16" (GPUs, with loss scaling); "auto" picks
    # mixed_bfloat16 on a CPU-only host with native bfloat16, else float32
    # (trainer/hardware.py). The served generator computes in float32 either way.
    mixed_precision: str = "auto"
    jit_compile: bool = False  # XLA for the train step: a win on GPU, slower on CPU.
    # Convolution filter gradients: "forward_conv" computes them as forward convolutions
    # (trainer/strided_conv.py; faster on CPU), "native" with TensorFlow's own
    # kernels, "auto" picks forward_conv when no GPU or TPU is visible.
    filter_gradient: str = "auto"
    strategy: str = "auto"
    sync_batch_norm: bool = False  # Batch statistics over all replicas.
    seed: int = 0  # Initial weights, data order, noise.
    log_every_steps: int = 50
    sample_every_steps: int = 250
    # Preemption safety: checkpoints under a stable directory (not the per-execution
    # run directory); create_pipeline sets it to <output-dir>/checkpoints.
    checkpoint_dir: str = ""
    checkpoint_every_steps: int = 500
    checkpoints_to_keep: int = 3
    shuffle_buffer: int = 10_000

    def __post_init__(self) -> None:
        if self.mixed_precision not in PRECISION_POLICIES:
            raise ValueError(f"mixed_precision must be one of {PRECISION_POLICIES}, "
                             f"got {self.mixed_precision!r}")
        if self.filter_gradient not in FILTER_GRADIENTS:
            raise ValueError(f"filter_gradient must be one of {FILTER_GRADIENTS}, "
                             f"got {self.filter_gradient!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        _at_least_one(self, "log_every_steps", "sample_every_steps", "checkpoint_every_steps",
                      "checkpoints_to_keep")


TRAINER_GROUPS = {"model": ModelConfig, "objective": ObjectiveConfig,
                  "optimizer": OptimizerConfig, "averaging": AveragingConfig,
                  "runtime": RuntimeConfig}


@dataclasses.dataclass(frozen=True)
class TrainerConfig(_Settings):
    """The DCGAN's settings, in groups; the Trainer receives it as JSON (`to_dict`)."""

    model: ModelConfig = ModelConfig()
    objective: ObjectiveConfig = ObjectiveConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    averaging: AveragingConfig = AveragingConfig()
    runtime: RuntimeConfig = RuntimeConfig()

    def __post_init__(self) -> None:  # What needs two groups.
        if self.optimizer.batch_size % self.model.pack:
            raise ValueError(f"batch_size {self.optimizer.batch_size} must be a multiple of "
                             f"pack {self.model.pack}")
        if self.objective.real_cluster_weight and not self.model.latent_categories:
            raise ValueError("real_cluster_weight needs latent_categories (the head it trains)")

    def replace(self, **groups: dict[str, Any]) -> "TrainerConfig":
        """A copy with settings changed, by group: replace(optimizer={"train_steps": 10})."""
        unknown = set(groups) - set(TRAINER_GROUPS)
        if unknown:
            raise ValueError(f"unknown TrainerConfig groups: {sorted(unknown)}; the groups are "
                             f"{sorted(TRAINER_GROUPS)}")
        return dataclasses.replace(self, **{
            name: dataclasses.replace(getattr(self, name), **changes)
            for name, changes in groups.items()})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainerConfig":
        """Strict: every key a group, every group's keys its settings; a setting from before
        the groups is refused with its new place."""
        unknown = sorted(set(values) - set(TRAINER_GROUPS))
        if unknown:
            moved = [f"{key} is now {setting_path(key)}" for key in unknown if setting_path(key)]
            raise ValueError(f"unknown TrainerConfig settings: {unknown}"
                             + (f" ({'; '.join(moved)})" if moved else ""))
        return cls(**{name: TRAINER_GROUPS[name].from_dict(group)
                      for name, group in values.items()})


def setting_path(name: str) -> str | None:
    """'group.name' of a TrainerConfig setting, or None."""
    for group, settings in TRAINER_GROUPS.items():
        if name in {field.name for field in dataclasses.fields(settings)}:
            return f"{group}.{name}"
    return None


@dataclasses.dataclass(frozen=True)
class ClassifierConfig(_Settings):
    """The MNIST CNN whose features and predictions the sample-quality metrics use."""

    epochs: int = 3
    batch_size: int = 128
    learning_rate: float = 2e-3  # Peak of a cosine decay to 0.
    seed: int = 0
    # Real training images compared with the eval images for the real-data floor;
    # create_pipeline sets it to the Evaluator's num_samples.
    floor_samples: int = 10_000



@dataclasses.dataclass(frozen=True)
class QualityGates(_Settings):
    """When a generator is blessed. Every failed gate is listed in the verdict; a metric that
    is NaN or infinite fails its gate.

    Set between what `default` reaches and what the specification's recipe reaches, so the
    recipe's generator is refused under them (`spec` keeps SPEC_GATES, the ones it was
    calibrated with); how they were calibrated: docs/quality.md. Untrained and collapsed
    generators score MNIST 1-2.
    """

    max_fid_to_floor: float = 10.0  # FID at most this multiple of the real-data floor.
    min_mnist_score: float = 8.5
    min_classes: int = 10
    min_class_share: float = 0.04
    max_class_share: float = 0.20
    # Non-regression: FID at most (1 + this) times the served model's FID. Every preset
    # keeps it: a worse generator never replaces the served one.
    max_fid_regression: float = 0.10
    # Conditional generators only: the classifier agrees with the requested digit.
    min_conditional_accuracy: float = 0.95
    # Stacked MNIST only (datasets with more than one digit per image): modes covered of
    # 10^channels, and KL(mode distribution || uniform) in nats. The defaults never refuse
    # (log 1000 = 6.9); the `stacked` preset sets its own.
    min_modes_covered: int = 0
    max_mode_kl: float = 10.0
    # Every metric is measured with the classifier: below this eval accuracy none is trusted.
    min_classifier_accuracy: float = 0.98

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"QualityGates.{field.name} must be a finite number >= 0, "
                                 f"got {value}")
        if self.max_fid_regression > MAX_FID_REGRESSION:
            raise ValueError(f"QualityGates.max_fid_regression must be at most "
                             f"{MAX_FID_REGRESSION} (non-regression cannot be switched off), "
                             f"got {self.max_fid_regression}")


@dataclasses.dataclass(frozen=True)
class EvaluatorConfig(_Settings):
    num_samples: int = 10_000
    seed: int = 0  # Generated samples use seeds seed .. seed + num_samples - 1.
    gates: QualityGates = QualityGates()

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "EvaluatorConfig":
        values = dict(values)
        gates = QualityGates.from_dict(values.pop("gates", {}))
        return dataclasses.replace(super().from_dict(values), gates=gates)


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Where the pipeline runs and what it trains."""

    pipeline_name: str = "dcgan-mnist"
    model_name: str = "dcgan_mnist"
    output_dir: str = "runs/local"
    # Directory with the four IDX files; empty: download with tensorflow-datasets.
    mnist_dir: str = ""
    # What is trained on, built from the MNIST digits: "mnist" or "stacked_mnist"
    # (dcgan_common/datasets.py); `dataset_seed` picks the stacked digits.
    dataset: str = "mnist"
    dataset_seed: int = 0
    # Push destination base (default <output_dir>/serving); TF Serving watches <base>/<model>.
    serving_base: str = ""
    # The curated schema; empty: the copy installed with the `components` package.
    schema_file: str = ""
    trainer: TrainerConfig = TrainerConfig()
    classifier: ClassifierConfig = ClassifierConfig()
    evaluator: EvaluatorConfig = EvaluatorConfig()
    # Beam's runner named, not chosen: the default DirectRunner first tries Prism, which it
    # downloads from GitHub at run time (offline it fails and falls back), so the same run would
    # use another runner online than offline. FnApiRunner is what it falls back to.
    beam_pipeline_args: tuple[str, ...] = ("--runner=FnApiRunner",
                                           "--direct_running_mode=in_memory",
                                           "--direct_num_workers=1")
    enable_cache: bool = True

    def __post_init__(self) -> None:
        channels = datasets.dataset(self.dataset).channels  # Refuses an unknown name.
        if self.trainer.model.conditional and channels != 1:
            raise ValueError(f"the conditional generator draws single MNIST digits; dataset "
                             f"{self.dataset!r} has {channels} digits per image")

    def replace_trainer(self, **groups: dict[str, Any]) -> "PipelineConfig":
        """A copy with Trainer settings changed, by group (TrainerConfig.replace)."""
        return dataclasses.replace(self, trainer=self.trainer.replace(**groups))


# The gates the specification's recipe was calibrated with: `spec` is the reference of every
# comparison, and stays deployable from its own preset.
SPEC_GATES = QualityGates(max_fid_to_floor=40.0, min_mnist_score=6.5)

# The smoke classifier trains one epoch on the tests' 1,000-image slice.
SMOKE_MIN_CLASSIFIER_ACCURACY = 0.5

# The specification's DCGAN at the sizes of its MNIST model, 3,000 steps: recognizable digits
# in minutes on a 2-core CPU.
SPEC_TRAINER = TrainerConfig(optimizer=OptimizerConfig(train_steps=3000),
                             runtime=RuntimeConfig(log_every_steps=100, sample_every_steps=500))
# The code's terms: its mutual information, real-image clustering and shift consistency.
CODE_TERMS = {"latent_code_weight": 0.2, "real_cluster_weight": 3.0,
              "cluster_consistency_weight": 1.0}
# `make run`: the recipe, trained longer at twice its learning rate, exporting the generator's
# weight average, with an unsupervised 10-category code whose discriminator head also clusters
# the real digits, shift-invariantly (the measurements that chose each: docs/experiments.md).
# Every checkpoint is kept, so `make bench-quality` on a `make run` output directory finds the
# run cached and draws its curves from them.
DEFAULT_TRAINER = SPEC_TRAINER.replace(
    model={"latent_categories": 10},
    objective=CODE_TERMS,
    optimizer={"learning_rate": 4e-4, "train_steps": 4500},
    averaging={"ema_decay": 0.999},
    runtime={"checkpoints_to_keep": 10})
# `default`'s settings for an unconditional generator, undone for a conditional one: the
# labels replace the unsupervised code, and the learning rate goes back to the recipe's (the
# one the conditional model was tuned at).
CONDITIONAL_OVERRIDES = {
    "model": {"conditional": True, "latent_categories": 0},
    "objective": {"real_cluster_weight": 0.0, "cluster_consistency_weight": 0.0},
    "optimizer": {"learning_rate": SPEC_TRAINER.optimizer.learning_rate}}

# Stacked MNIST (1,000 modes): the recipe with `default`'s learning rate, weight average and
# terms, its unsupervised code given per channel: ten categories for each channel's digit,
# read by a category head of its own that sees one channel at a time (32/64 filters), so each
# category can only follow its channel's digit. At 4,500 steps this halved FID and took the
# mode KL from 0.071 to 0.050 (median of two seeds) against the code-free preset; 12,000
# steps fit the 45-minute budget on 2 cores (0.11-0.17 s a step with the head). No packing:
# PacGAN's two samples per discriminator input gave a higher KL and FID at equal settings
# (measurements and ablation: docs/stacked_mnist.md). Every checkpoint kept, as for
# `default`, so `make bench-quality` on a `stacked` output directory finds the run cached.
STACKED_TRAINER = SPEC_TRAINER.replace(
    model={"latent_categories": 10, "code_head_filters": (32, 64)},
    objective=CODE_TERMS,
    optimizer={"learning_rate": 4e-4, "train_steps": 12_000},
    averaging={"ema_decay": 0.999},
    runtime={"checkpoint_every_steps": 2000, "checkpoints_to_keep": 7, "log_every_steps": 200,
             "sample_every_steps": 1000})
# Its gates, set as MNIST's were, between what the preset reaches and what it replaced, with
# room for the seed spread (docs/stacked_mnist.md): its three seeds FID 9-11x the floor, MNIST
# score 9.1-9.3, 1,000 modes, mode KL 0.027-0.037; the preset before it (no code) 26-29x,
# 7.7, 1,000, 0.058-0.061; the recipe on Stacked MNIST 118x, 6.93, 999, 0.159. The recipe's
# generator and the earlier presets' are refused (tests/test_quality_gates.py).
STACKED_GATES = QualityGates(max_fid_to_floor=20.0, min_mnist_score=8.5,
                             min_modes_covered=990, max_mode_kl=0.07)

PRESETS: dict[str, PipelineConfig] = {
    # Seconds: the tests' end-to-end runs on the committed MNIST slice.
    # Its gates are the tiny slice's: 20 steps cannot draw digits, the e2e run must still push.
    "smoke": PipelineConfig(
        trainer=TrainerConfig(
            model=ModelConfig(generator_filters=(32, 16), discriminator_filters=(16, 32)),
            optimizer=OptimizerConfig(batch_size=32, train_steps=20),
            runtime=RuntimeConfig(log_every_steps=5, sample_every_steps=10)),
        classifier=ClassifierConfig(epochs=1, batch_size=64),
        # Non-regression stays (a smoke run never replaces a better served generator).
        evaluator=EvaluatorConfig(num_samples=500, gates=QualityGates(
            max_fid_to_floor=1e6, min_mnist_score=1.0, min_classes=1, min_class_share=0.0,
            max_class_share=1.0, min_conditional_accuracy=0.0,
            min_classifier_accuracy=SMOKE_MIN_CLASSIFIER_ACCURACY))),
    # The specification's recipe, unchanged: the reference of every quality comparison.
    "spec": PipelineConfig(trainer=SPEC_TRAINER, evaluator=EvaluatorConfig(gates=SPEC_GATES)),
    # `make run`.
    "default": PipelineConfig(trainer=DEFAULT_TRAINER),
    # The class-conditional model (`--preset conditional`, `default` with `--conditional`):
    # 10,000 steps, what the 98% conditional-accuracy target takes on full MNIST.
    "conditional": PipelineConfig(trainer=DEFAULT_TRAINER.replace(**CONDITIONAL_OVERRIDES).replace(
        optimizer={"train_steps": 10_000})),
    # Stacked MNIST: three digits per image, coverage of its 1,000 modes gated.
    "stacked": PipelineConfig(
        dataset="stacked_mnist", trainer=STACKED_TRAINER,
        # 180,000 digits per epoch (three per image): one epoch is MNIST's three.
        classifier=ClassifierConfig(epochs=1),
        evaluator=EvaluatorConfig(num_samples=datasets.dataset("stacked_mnist").eval_samples,
                                  gates=STACKED_GATES)),
    # The quality benchmark: `default`, trained 10,000 steps.
    "full": PipelineConfig(trainer=DEFAULT_TRAINER.replace(
        optimizer={"train_steps": 10_000},
        runtime={"log_every_steps": 200, "sample_every_steps": 1000})),
}


def with_dataset(config: PipelineConfig, name: str) -> PipelineConfig:
    """`config` trained on another dataset; a preset measuring its dataset's standard sample
    count measures the new one's (Stacked MNIST: 26,000), a preset's own count stays."""
    samples = config.evaluator.num_samples
    if samples == datasets.dataset(config.dataset).eval_samples:
        samples = datasets.dataset(name).eval_samples
    return dataclasses.replace(config, dataset=name, evaluator=dataclasses.replace(
        config.evaluator, num_samples=samples))


def preset(name: str) -> PipelineConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
