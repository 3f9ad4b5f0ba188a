"""From a composed config to the objects of a run: device, data, task, estimator."""
import inspect
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig

from .config.commands import DType
from .config.store import option_config, options
from .distributed import World
from .errors import UserError


def build(node: DictConfig, **kwargs: Any) -> Any:
    """hydra.utils.instantiate, letting the UserError of a constructor through as it is
    (instantiate wraps every error it sees)."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as error:
        if isinstance(error.__cause__, UserError):
            raise error.__cause__ from None
        raise


def pick_device(name: str, world: World = World()) -> torch.device:
    if world.size > 1:
        return _rank_device(name, world)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"trainer.device={name} but this machine has no CUDA device: use trainer.device=auto or cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type == "meta":  # meta holds shapes, never values
        raise UserError(f"trainer.device must be auto, cpu or cuda[:N], got '{name}'")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise UserError(f"trainer.device={name} but this machine has {torch.cuda.device_count()} CUDA device(s), "
                        f"cuda:0 to cuda:{torch.cuda.device_count() - 1}: use one of those, or trainer.device=auto")
    try:
        # torch names more device types than a given build or machine can use (mps, xpu, ...);
        # only an allocation tells.
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError):
        raise UserError(f"trainer.device={name}: this torch cannot use {device.type} devices on this machine; "
                        "use trainer.device=auto or cpu") from None
    return device


def _rank_device(name: str, world: World) -> torch.device:
    """One of several ranks: the CPU, or the GPU cuda:LOCAL_RANK, one per rank of the node."""
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if name not in ("auto", "cuda"):
        raise UserError(f"trainer.device={name}: with several ranks each takes cuda:LOCAL_RANK; "
                        "use trainer.device=auto, cuda or cpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count < world.local_size:
        raise UserError(f"trainer.device={name} but this node has {count} CUDA device(s) for its {world.local_size} "
                        f"ranks: start at most {count} ranks per node (torchrun --nproc-per-node={count}), "
                        "or use trainer.device=cpu")
    return torch.device("cuda", world.local_rank)


def build_task(cfg: DictConfig, device: torch.device):
    """The task, handed what its constructor asks for among the run's data (loaded only
    then, and converted once to trainer.dtype), backbone and device.

    trainer.dtype becomes torch's default dtype for the rest of the process, which is one run
    (a sweep's jobs each build their task, so each sets its own): every network, θ, inner state
    and evaluation tensor a task or estimator creates without naming a dtype then follows it,
    as torch's own float64 idiom does, with no dtype threaded through every task. The data is
    converted explicitly because the loaders produce float32 whatever the default."""
    dtype = run_dtype(cfg)
    torch.set_default_dtype(dtype)
    wanted = inspect.signature(get_class(cfg.task._target_)).parameters
    provided = {}
    if "data" in wanted:
        provided["data"] = build(cfg.data).to(device, dtype)
    if "make_backbone" in wanted:
        provided["make_backbone"] = build(cfg.backbone, _partial_=True)
    if "backbone_option" in wanted:
        provided["backbone_option"] = backbone_option
    if "device" in wanted:
        provided["device"] = device
    # Partial first: handed to instantiate directly, the data's dataclasses would be turned
    # into configs.
    return build(cfg.task, _partial_=True, _convert_="all")(**provided)


def backbone_option(name: str):
    """The builder of `backbone=<name>` at its defaults (conf/backbone/<name>.yaml), for a task
    that trains other architectures beside the run's own."""
    choices = options("backbone")
    if name not in choices:
        raise UserError(f"there is no backbone '{name}': choose among {', '.join(choices)}")
    return build(option_config("backbone", name), _partial_=True)


def run_dtype(cfg: DictConfig) -> torch.dtype:
    """trainer.dtype (the schema's Enum member; every config, a resumed run's too, is composed
    from the schemas) as a torch dtype."""
    return getattr(torch, DType(cfg.trainer.dtype).value)


def first_problem(cfg: DictConfig, device: torch.device):
    """The task, θ, and the problem of `metaopt train`'s first meta-step (the same seeds, drawn
    in the same order), with the generator they came from: what gradcheck and bench measure."""
    torch.manual_seed(cfg.trainer.seed)
    task = build_task(cfg, device)
    generator = torch.Generator(device).manual_seed(cfg.trainer.seed)
    meta_params = task.init_meta_params(generator)
    return task, meta_params, task.sample(generator, cfg.trainer.meta_batch), generator


def eval_generator(seed: int, device: torch.device) -> torch.Generator:
    """The same evaluation draws (networks, baselines) at every evaluation of a run, apart
    from the generator that meta-training draws from."""
    return torch.Generator(device).manual_seed(seed + 1)
