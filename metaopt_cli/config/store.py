"""Registers every schema in Hydra's ConfigStore.

An option's YAML names its schema as the first entry of its defaults list
(`defaults: [/schema/estimator@_here_: tbptt, _self_]`), so the schema's keys and types bind
it. Schemas live in groups of their own under `schema/`, so they never show up as options.
"""
from functools import cache
from importlib.resources import files

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from . import backbones, commands, data, estimators, outer, tasks

# The config groups users choose from, in the order `metaopt list` shows them.
GROUPS = ("task", "estimator", "backbone", "data", "logger", "trainer/outer_optimizer", "trainer/outer_scheduler",
          "experiment", "hparams_search")

SCHEMAS = {
    None: {"train": commands.TrainConfig, "eval": commands.EvalConfig, "gradcheck": commands.GradcheckConfig,
           "bench": commands.BenchConfig, "experts": commands.ExpertsConfig, "list": commands.ListConfig},
    "logger": {"wandb": commands.WandbLoggerConfig, "none": commands.NoLoggerConfig},
    "estimator": {
        "backprop": estimators.BackpropConfig,
        "tbptt": estimators.TBPTTConfig,
        "es": estimators.ESConfig,
        "pes": estimators.PESConfig,
        "implicit": estimators.ImplicitConfig,
        "forward": estimators.ForwardConfig,
    },
    "backbone": {
        "mlp": backbones.MLPConfig,
        "conv4": backbones.Conv4Config,
        "convnet": backbones.ConvNetConfig,
        "resnet12": backbones.ResNet12Config,
        "wrn": backbones.WideResNetConfig,
    },
    "data": {
        "digits": data.DigitsConfig,
        "torchvision": data.TorchvisionConfig,
        "sinusoid": data.SinusoidConfig,
        "omniglot": data.OmniglotConfig,
        "cifar_fs": data.CifarFSConfig,
        "miniimagenet": data.MiniImageNetConfig,
    },
    "trainer/outer_optimizer": {"adam": outer.AdamConfig, "adamw": outer.AdamWConfig, "sgd": outer.SGDConfig},
    "trainer/outer_scheduler": {
        "constant": outer.ConstantConfig,
        "step": outer.StepConfig,
        "multistep": outer.MultiStepConfig,
        "cosine": outer.CosineConfig,
    },
    "task": {
        "distill": tasks.DistillConfig,
        "influence": tasks.InfluenceConfig,
        "maml": tasks.MAMLConfig,
        "protonet": tasks.ProtoNetConfig,
        "hpo": tasks.HPOConfig,
        "learned_opt": tasks.LearnedOptConfig,
        "nas": tasks.NASConfig,
    },
}


def register_configs() -> None:
    store = ConfigStore.instance()
    for group, schemas in SCHEMAS.items():
        for name, node in schemas.items():
            store.store(group="schema" if group is None else f"schema/{group}", name=name, node=node)


def options(group: str) -> list[str]:
    """The options of a config group: its YAML files under conf/<group>/."""
    folder = files("metaopt_cli.conf") / group
    return sorted(entry.name.removesuffix(".yaml") for entry in folder.iterdir() if entry.name.endswith(".yaml"))


@cache
def schema_of(group: str, option: str) -> type:
    """The schema an option's YAML names first (`/schema/<group>@_here_: <name>`): what it
    builds, and what that declares, without composing a config."""
    defaults = OmegaConf.load(files("metaopt_cli.conf") / group / f"{option}.yaml").defaults
    name = next(iter(defaults[0].values()))
    return SCHEMAS[group][name]


def option_config(group: str, option: str) -> DictConfig:
    """An option's own values bound by its schema, as composing `<group>=<option>` with no other
    override gives them: what a run builds beside its chosen option (other backbones to evaluate
    on), without a second Hydra composition inside the running one."""
    values = OmegaConf.load(files("metaopt_cli.conf") / group / f"{option}.yaml")
    values.pop("defaults", None)
    return OmegaConf.merge(OmegaConf.structured(schema_of(group, option)), values)
