"""Every option of every config group composes against its schema; typos fail."""
import configparser
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from metaopt_cli.config.store import GROUPS, SCHEMAS, options, schema_of
from metaopt_cli.startup import describe_config_error

ROOT = Path(__file__).resolve().parents[1]
GROUP_OPTIONS = [(group, option) for group in GROUPS for option in options(group)]


def test_every_group_has_options():
    assert {group for group, _ in GROUP_OPTIONS} >= {"task", "estimator", "backbone", "data", "logger"}


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS)
def test_every_option_composes_with_no_missing_value(compose_config, group, option):
    cfg = compose_config("train", [f"{group}={option}"])
    global_package = group in ("experiment", "hparams_search")  # `# @package _global_`: keys anywhere
    node = cfg if global_package else OmegaConf.select(cfg, group.replace("/", "."))
    # Every knob has a value: OmegaConf raises on a missing (???) one when it is read.
    for key in node:
        node[key]
    assert node.get("_target_") or global_package


@pytest.mark.parametrize(("group", "option"), [(group, option) for group, option in GROUP_OPTIONS if group in SCHEMAS])
def test_the_schema_an_option_names_first_is_the_one_it_composes_to(compose_config, group, option):
    """What the matrices read of an option without composing it (its declarations) is what a run gets."""
    node = OmegaConf.select(compose_config("train", [f"{group}={option}"]), group.replace("/", "."))
    assert OmegaConf.get_type(node) is schema_of(group, option)


@pytest.mark.parametrize("option", options("estimator"))
def test_every_estimator_instantiates_from_its_yaml(compose_config, option):
    estimator = instantiate(compose_config("train", [f"estimator={option}"]).estimator)
    assert hasattr(estimator, "estimate")


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("estimator.trunaction=5", "unknown key 'estimator.trunaction'; did you mean 'truncation'?"),
        ("trainer.meta_steps=lots", "trainer.meta_steps: Value 'lots'"),
        ("task=nope", "unknown task 'nope': choose one of distill"),
    ],
)
def test_composition_errors_read_as_one_line(compose_config, override, expected):
    with pytest.raises((ConfigCompositionException, ConfigKeyError, ValidationError)) as caught:
        compose_config("train", [override])
    message = describe_config_error(caught.value)
    assert expected in message and "\n" not in message


def test_eval_config_takes_the_train_groups(compose_config):
    cfg = compose_config("eval", ["run=/some/run", "task.eval_models=7"])
    assert cfg.run == "/some/run" and cfg.task.eval_models == 7


def test_setup_cfg_packages_every_python_package():
    """A subpackage missing from setup.cfg works from the checkout but not from `pip install .`."""
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    listed = set(parser["options"]["packages"].split())
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for top in ("metaopt_cli", "hydra_plugins") for p in (ROOT / top).rglob("__init__.py")}
    assert listed == found | {"metaopt_cli.conf"}
