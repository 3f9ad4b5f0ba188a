"""The space the HPO baselines (random search, TPE) search: the learned hyperparameters, a
per-step schedule searched as a constant learning rate."""
from ...estimators.problem import Tensors
from .hyperparams import Hyperparams

# name: (low, high, log scale). Log-uniform learning rate and weight decay, uniform momentum and
# decay power (of the inverse_decay schedule).
RANGES = {
    "lr": (1e-3, 1.0, True),
    "decay": (0.0, 3.0, False),
    "momentum": (0.0, 0.99, False),
    "weight_decay": (1e-6, 1e-2, True),
}


def searched(hp: Hyperparams) -> tuple[str, ...]:
    """The names of RANGES that the learned hyperparameters put in play."""
    schedule = ("lr", "decay") if hp.schedule == "inverse_decay" else ("lr",)
    return (*(schedule if "lr" in hp.learned else ()), *(name for name in ("momentum", "weight_decay")
                                                         if name in hp.learned))


def setting(task, values: dict[str, float]) -> Tensors:
    """The meta-parameters (θ's form) of a point of the space; what it does not name keeps its
    initial value."""
    hp = task.hyperparams
    every = hp.unconstrained(values.get("lr", hp.lr), values.get("decay", hp.decay),
                             values.get("momentum", hp.momentum), values.get("weight_decay", hp.weight_decay))
    return {name: every[name].to(task.device) for name in hp.init_meta_params(task.device)}
