"""The outer optimizer and its learning-rate schedule, built from trainer.outer_optimizer and
trainer.outer_scheduler (`_target_` nodes with `_partial_: true`) at trainer.outer_lr."""
import warnings

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from .errors import UserError

# What a `_target_` of each node may name: torch's own classes of the right kind, nothing else.
TORCH_CLASSES = {"outer_optimizer": (torch.optim, torch.optim.Optimizer),
                 "outer_scheduler": (torch.optim.lr_scheduler, torch.optim.lr_scheduler.LRScheduler)}


def build_outer(trainer: DictConfig, params) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    # _convert_: plain lists (Adam's betas), which the checkpoint stores and weights_only loads.
    optimizer = instantiate(trainer.outer_optimizer, _convert_="all")(params, lr=trainer.outer_lr)
    return optimizer, instantiate(trainer.outer_scheduler, _convert_="all")(optimizer)


def check_outer(trainer: DictConfig) -> None:
    """A `_target_` outside torch's optimizers or schedules, or one that refuses the preset's
    arguments, fails at start-up, before any run."""
    for node in TORCH_CLASSES:
        target = trainer[node]._target_
        if not names_torch_class(f"trainer.{node}._target_", target):
            module, base = TORCH_CLASSES[node]
            raise UserError(f"trainer.{node}._target_={target} is not one of {module.__name__}'s {base.__name__} "
                            f"classes: name one, such as {module.__name__}.{_example(node)}, or choose a preset with "
                            f"trainer.{node}=<name> (metaopt list)")
    try:
        build_outer(trainer, [torch.zeros(1, requires_grad=True)])
    except Exception as error:  # noqa: BLE001 -- a class given its preset's arguments fails in its own way
        cause = error.__cause__ or error
        raise UserError(f"trainer.outer_optimizer / trainer.outer_scheduler cannot be built ({cause}): give the "
                        "class only arguments it takes, or choose a preset (metaopt list)") from None


def names_torch_class(key: str, target) -> bool:
    """Whether `key` (trainer.outer_optimizer._target_ or trainer.outer_scheduler._target_)
    names a class of torch's of its kind."""
    node = key.removeprefix("trainer.").removesuffix("._target_")
    if node not in TORCH_CLASSES or not isinstance(target, str):
        return False
    module, base = TORCH_CLASSES[node]
    name = target.removeprefix(module.__name__ + ".")
    found = getattr(module, name, None) if target != name and name.isidentifier() else None
    return isinstance(found, type) and issubclass(found, base)


def step_schedule(scheduler: torch.optim.lr_scheduler.LRScheduler) -> None:
    """Once per meta-step. A task that takes the outer loop over from the first step
    (learned_opt's self-training with no warm-up) never steps the configured optimizer, whose
    schedule torch then warns about, though that lr is never used."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"Detected call of `lr_scheduler\.step\(\)` before `optimizer\.step\(\)`")
        scheduler.step()


def outer_lr(optimizer: torch.optim.Optimizer) -> float:
    """The lr the next outer step takes (the schedule's value now)."""
    return float(optimizer.param_groups[0]["lr"])


def restore_outer(optimizer: torch.optim.Optimizer, scheduler, saved_schedule: dict | None,
                  trainer: DictConfig) -> None:
    """After the optimizer's state is loaded, the schedule continues where the run stopped; what
    is asked for now wins, as for the lr (lowering trainer.outer_lr after a divergence must take
    effect): the optimizer's knobs given now (momentum, …), trainer.outer_lr, which rescales the
    whole schedule, and the schedule's knobs, which take over from the current lr on (a longer
    cosine for more meta-steps)."""
    for group in optimizer.param_groups:  # loading the state put back the saved knobs
        group.update({key: optimizer.defaults[key] for key in _knobs(trainer.outer_optimizer, optimizer.defaults)})
    fresh = scheduler.state_dict()  # built from the config given now
    if saved_schedule is None:  # a checkpoint from before schedules: the run's lr was constant, the group's lr
        saved_schedule = {**fresh, "base_lrs": [group["lr"] for group in optimizer.param_groups]}
    given = _knobs(trainer.outer_scheduler, fresh)
    scheduler.load_state_dict({**saved_schedule, **{key: fresh[key] for key in (*given, "base_lrs")}})
    for group, now, then in zip(optimizer.param_groups, fresh["base_lrs"], saved_schedule["base_lrs"]):
        group["lr"] *= now / then
        group["initial_lr"] = now


def _knobs(node: DictConfig, known: dict) -> list[str]:
    """The node's arguments (not `_target_`, `_partial_`) that the built object keeps under their names."""
    return [key for key in node if key in known and not (key.startswith("_") and key.endswith("_"))]


def _example(node: str) -> str:
    return "NAdam" if node == "outer_optimizer" else "ExponentialLR"
