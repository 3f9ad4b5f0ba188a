"""The declared contracts: every task and estimator declares what the matrices need, the
matrices and their messages derive from the declarations, and every task runs bare."""
import math

import pytest
import torch

from metaopt_cli.compat import (check_run_config, estimator_class, missing, task_class, why_unsupported,
                                why_unsupported_data)
from metaopt_cli.config.data import DATA_KINDS
from metaopt_cli.config.store import options, schema_of
from metaopt_cli.errors import UserError
from metaopt_cli.estimators.backprop import Backprop
from metaopt_cli.estimators.forward import Forward
from metaopt_cli.estimators.protocol import Estimator
from metaopt_cli.tasks.influence import InfluenceBalancing
from metaopt_cli.tasks.protocol import CAPABILITIES, OnlyWith, Task, declared, for_data
from conftest import assert_user_error, read_json, run_in_process

TASKS = options("task")


@pytest.mark.parametrize("task", TASKS)
def test_every_task_keeps_the_task_protocol(task):
    cls = task_class(task)
    for method in ("init_meta_params", "sample", "evaluate", "save_pictures"):
        assert callable(getattr(cls, method, None)), method
    assert declared(cls, "default_estimator") in options("estimator")
    assert set(declared(cls, "data_kinds")) <= set(DATA_KINDS)
    knob = declared(cls, "inner_step_knob")
    assert knob is None or knob.removeprefix("task.") in schema_of("task", task).__dataclass_fields__
    lacking = {name for name in vars(cls) if name.startswith("no_")}  # a misspelt one would be ignored
    assert lacking <= {f"no_{capability}" for capability in CAPABILITIES}
    for capability in CAPABILITIES:
        assert isinstance(declared(cls, f"no_{capability}"), (str, OnlyWith, type(None)))
    for kind in declared(cls, "data_kinds") or (None,):  # a sweeper's default objective, for each kind of data
        objective = for_data(declared(cls, "default_objective"), kind)
        assert objective.direction in ("minimize", "maximize")
        assert objective.key in for_data(declared(cls, "reported_metrics"), kind)


@pytest.mark.parametrize("estimator", options("estimator"))
def test_every_estimator_keeps_the_estimator_protocol(estimator):
    cls = estimator_class(estimator)
    assert callable(getattr(cls, "estimate", None)) and callable(getattr(cls, "check_horizon", None))
    declared_needs = {name for name in vars(cls) if name.startswith("needs_")}
    assert declared_needs <= {f"needs_{capability}" for capability in CAPABILITIES}
    # An online estimator's state goes both ways through a checkpoint.
    assert hasattr(cls, "state_dict") == hasattr(cls, "load_state_dict")


def test_every_data_option_declares_a_known_kind():
    for data in options("data"):
        assert schema_of("data", data).kind in DATA_KINDS, data


class LoopFree:
    no_inner_loop = "it has no inner loop"


class ForwardUnsafe:
    no_forward_mode = "one of its ops has no jvp rule"


class Truncating:
    needs_inner_loop = True


class NeedsOptimum:
    needs_inner_objective = True
    needs_inner_optimum = True


def test_an_estimator_is_refused_for_what_the_task_lacks_with_its_reason():
    assert missing(LoopFree, Truncating) == "it has no inner loop"
    # No inner loop, hence no inner objective and no optimum: the more basic reason serves.
    assert missing(LoopFree, NeedsOptimum) == "it has no inner loop"
    assert missing(LoopFree, Forward) is None and missing(ForwardUnsafe, Forward) == "one of its ops has no jvp rule"
    assert missing(ForwardUnsafe, Truncating) is None
    # What a part does not declare takes the protocol's default: a task has every capability,
    # an estimator needs none.
    assert missing(Task, NeedsOptimum) is None and missing(LoopFree, Estimator) is None


@pytest.mark.parametrize(
    ("task", "estimator", "reason"),
    [
        ("distill", "implicit", "distillation trains each fresh network for a fixed K steps and stops far from any "
                                "inner optimum, so the implicit function theorem does not apply"),
        ("protonet", "tbptt", "Prototypical Networks have no inner loop to truncate"),
        ("protonet", "pes", "Prototypical Networks have no inner loop to truncate"),
        ("protonet", "implicit", "Prototypical Networks have no inner loop, so no inner optimum"),
        ("learned_opt", "implicit", "a learned optimizer is judged along its whole training run, not at an inner "
                                    "optimum, so the implicit function theorem does not apply"),
        ("influence", "implicit", "the linear system is not an optimisation, so it has no inner objective for the "
                                  "implicit function theorem"),
    ],
)
def test_unsupported_pairs_say_why_and_what_serves_instead(task, estimator, reason):
    message = why_unsupported(task, estimator)
    assert message.startswith(f"{reason}: use backprop")
    assert estimator not in message.split(": use ")[1]


def test_the_supported_pairs_are_those_nothing_refuses():
    refused = {(task, estimator) for task in TASKS for estimator in options("estimator")
               if why_unsupported(task, estimator)}
    assert refused == {("distill", "implicit"), ("protonet", "tbptt"), ("protonet", "pes"),
                       ("protonet", "implicit"), ("learned_opt", "implicit"), ("influence", "implicit")}


def test_implicit_serves_hpo_only_for_the_hyperparameters_of_the_inner_objective(compose_config):
    assert why_unsupported("hpo", "implicit") is None  # with some settings: `metaopt list`'s ~
    lr = compose_config("train", ["task=hpo", "task.hyperparams=[lr,weight_decay]"]).task
    assert why_unsupported("hpo", "implicit", lr) == (
        "implicit differentiation sees only hyperparameters of the inner objective (weight_decay), not lr, which act "
        "on the optimiser's path: set task.hyperparams=[weight_decay], or use backprop, es, forward, pes or tbptt")
    decay = compose_config("train", ["task=hpo", "task.hyperparams=[weight_decay]"]).task
    assert why_unsupported("hpo", "implicit", decay) is None


@pytest.mark.parametrize("task", ["distill", "hpo", "learned_opt"])
def test_classification_tasks_refuse_regression_and_few_shot_data_at_start_up(compose_config, task):
    for data in ("sinusoid", "omniglot"):
        cfg = compose_config("train", [f"task={task}", f"data={data}"], hydra_node=True)
        with pytest.raises(UserError, match=f"task={task} does not support data={data}: .* use data=cifar10, "
                                            "digits, fashion_mnist or mnist"):
            check_run_config(cfg, cfg.hydra.runtime.choices)


def test_which_task_takes_which_data():
    takes = {task: {data for data in options("data") if not why_unsupported_data(task, data)} for task in TASKS}
    classification = {"cifar10", "digits", "fashion_mnist", "mnist"}
    assert takes["maml"] == set(options("data"))
    assert takes["protonet"] == set(options("data")) - {"sinusoid"}
    assert takes["distill"] == takes["hpo"] == takes["learned_opt"] == classification
    assert takes["influence"] == set(options("data"))  # it takes none, so any choice is ignored


def test_data_the_task_cannot_use_is_one_line_from_the_cli(tmp_path):
    assert_user_error(run_in_process(["train", "task=distill", "data=sinusoid"], tmp_path),
                      "task=distill does not support data=sinusoid", "regression", "use data=cifar10")


@pytest.mark.parametrize("task", TASKS)
def test_a_bare_task_composes_with_its_default_estimator_and_passes_the_checks(compose_config, task):
    cfg = compose_config("train", [f"task={task}"], hydra_node=True)
    assert cfg.hydra.runtime.choices.estimator == declared(task_class(task), "default_estimator")
    check_run_config(cfg, cfg.hydra.runtime.choices)


@pytest.mark.parametrize(
    ("overrides", "estimator"),
    [
        (["task=maml", "estimator=pes"], "pes"),  # the command line wins over the task's default
        (["estimator=es"], "es"),
        (["experiment=influence_balancing_tbptt"], "tbptt"),  # an experiment's choice wins too
        (["task=maml", "experiment=influence_balancing"], "pes"),
        (["experiment=maml_sinusoid", "estimator=es"], "es"),
    ],
)
def test_the_default_estimator_gives_way(compose_config, overrides, estimator):
    assert compose_config("train", overrides, hydra_node=True).hydra.runtime.choices.estimator == estimator


# Each task's evaluation shrunk to seconds; its training as `metaopt train task=X` has it.
SMALL_EVALUATION = {
    "distill": ["task.eval_models=2", "task.eval_steps=2", "task.eval_lrs=[0.1]"],
    "hpo": ["task.eval_seeds=2", "task.random_search_trials=1"],
    "influence": ["task.horizon=100"],  # its 100000 steps take minutes for one offline estimate
    "learned_opt": ["task.test_horizon=2", "task.test_seeds=1", "task.adam_lrs=[0.01]", "task.sgd_lrs=[0.1]"],
    "maml": ["task.test_episodes=2"],
    "nas": ["task.eval_steps=2", "task.eval_seeds=2", "task.random_archs=1"],
    "protonet": ["task.test_episodes=2"],
}


@pytest.mark.parametrize("task", TASKS)
def test_every_task_trains_bare(tmp_path, task):
    result = run_in_process(["train", f"task={task}", "trainer.meta_steps=1", "trainer.progress=false", "logger=none",
                             "hydra.run.dir=run", *SMALL_EVALUATION[task]], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_json(tmp_path / "run" / "summary.json")
    assert (summary["task"], summary["estimator"]) == (task, declared(task_class(task), "default_estimator"))
    _reports_what_it_declares(task_class(task), "classification", summary)


def _reports_what_it_declares(cls: type, kind: str, summary: dict) -> None:
    """What trainer.objective may name is in the summary, and the default objective among it."""
    kind = kind if declared(cls, "data_kinds") else None
    reported = for_data(declared(cls, "reported_metrics"), kind)
    assert set(reported) <= set(summary), set(reported) - set(summary)
    assert summary["objective"] == for_data(declared(cls, "default_objective"), kind).key in reported


def test_maml_reports_what_it_declares_for_a_regression(tmp_path):
    result = run_in_process(["train", "experiment=maml_sinusoid", "trainer.meta_steps=1", "trainer.progress=false",
                             "logger=none", "hydra.run.dir=run", *SMALL_EVALUATION["maml"]], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    _reports_what_it_declares(task_class("maml"), "regression", read_json(tmp_path / "run" / "summary.json"))


def test_list_prints_both_matrices_on_a_100_column_terminal(tmp_path):
    result = run_in_process(["list"], tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "task × estimator" in out and "task × data" in out
    assert max(map(len, out.splitlines())) <= 100
    matrix = out.split("task × estimator")[1].splitlines()[2:2 + len(TASKS)]
    rows = {line.split()[0]: line.split()[1:] for line in matrix}
    assert set(rows) == set(TASKS) and all(cells.count("●") == 1 for cells in rows.values())
    assert "protonet × tbptt: Prototypical Networks have no inner loop to truncate" in out
    assert "sinusoid       regression" in out


def test_influence_runs_under_forward_mode_and_matches_backprop():
    """Exact forward mode pushes one tangent per meta-parameter; it equals backprop's gradient."""
    task = InfluenceBalancing(horizon=30, dim=23, positive=10, init_theta=0.5, device=torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    meta_params = task.init_meta_params(generator)
    problem = task.sample(generator, 1)
    exact, metrics = Forward("exact", 1, max_tangents=4, chunk=4).estimate(problem, meta_params, generator)
    reference, _ = Backprop(checkpoint=False).estimate(problem, meta_params, generator)
    assert exact["theta"].dtype == torch.float32 and math.isfinite(float(metrics["meta_loss"]))
    torch.testing.assert_close(exact["theta"], reference["theta"], rtol=1e-5, atol=0)
