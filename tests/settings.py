"""Test shorthand: a TrainerConfig with settings changed by name. Each setting's name belongs
to one group (dcgan_common.config.setting_path), so the tests can say `r1_weight=3.0` where
production code says `objective={"r1_weight": 3.0}`."""

from dcgan_common.config import TrainerConfig, setting_path


def with_settings(config: TrainerConfig, **settings) -> TrainerConfig:
    groups: dict[str, dict] = {}
    for name, value in settings.items():
        path = setting_path(name)
        if path is None:
            raise TypeError(f"no TrainerConfig setting {name!r}")
        groups.setdefault(path.split(".")[0], {})[name] = value
    return config.replace(**groups)


def trainer_config(**settings) -> TrainerConfig:
    return with_settings(TrainerConfig(), **settings)
