"""trainer.compile: the inner loop's steps through torch.compile.

`compile` hands each inner step (Problem.step) and each meta-loss term to torch.compile with its
default backend (inductor), as whole graphs (fullgraph=True). A step rather than the whole unroll:
the unroll is a Python loop of K steps, whose one graph would be K steps long (compile time grows
with K, and every new window of a truncated estimator would compile again); a step's graph compiles
once and runs K times.

What stays compiled across steps and meta-steps:
- `t` is a Python int. Dynamo specialises on its first value and makes it symbolic at the second
  (automatic dynamic shapes), so a step compiles twice (t = 0, then any t), not once per step; a
  problem must use t in ways that stay symbolic (HPO's schedule turns it into a tensor at once).
- A new problem each meta-step (new tensors of the same shapes, the task's same network) passes the
  guards of the last: nothing compiles again after the first meta-step that compiles.
- Each grad mode and each requires-grad pattern of the inputs compiles once more (truncated backprop's
  windows that score nothing run without a graph; a window's first state is detached). Past dynamo's
  limit of recompilations per function (torch._dynamo.config.recompile_limit), dynamo itself warns
  and runs the function eagerly.

What runs eagerly, and says so once a run:
- a step that torch.compile cannot take whole (a graph break);
- a step called inside a torch.func transform, as forward-mode's jvp runs the unroll: a compiled
  function cannot be entered from inside vmap or jvp (pytorch/pytorch#128711), which is why ES and
  PES unroll their particles with the vmap inside each step (estimators/particlewise.py).
Silently, by design: the first meta-step on a CPU, whose peak memory is measured op by op with a
TorchDispatchMode, which torch.compile refuses ("non-infra torch dispatch mode present"); its peak
is the eager step's.
"""
import contextlib
import functools
import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar

import torch
from torch.utils._python_dispatch import is_in_torch_dispatch_mode

from .config.commands import Compile
from .errors import UserError
from .estimators.problem import Problem, Tensors

log = logging.getLogger(__name__)

# torch.compile's default. Tests of what dynamo decides (guards, recompilations) swap in "aot_eager",
# which traces forward and backward as inductor does and skips its code generation.
BACKEND = "inductor"

_active = ContextVar("compiling", default=False)  # inside compiling(Compile.compile)
_eager: set[str] = set()  # the problems' functions torch.compile could not take whole: eager for the rest of the run
_warned: set[str] = set()  # each warning once a run


def check_compile(mode: Compile, device: torch.device) -> None:
    """At start-up: refuse what this version cannot do on this device."""
    if mode is not Compile.cudagraph:
        return
    if device.type != "cuda":
        raise UserError("trainer.compile=cudagraph captures CUDA graphs and needs a CUDA device: "
                        "use trainer.compile=compile")
    raise UserError("trainer.compile=cudagraph (a whole meta-step captured as one CUDA graph) is not available in this "
                    "version yet: use trainer.compile=compile")


def start(mode: Compile) -> None:
    """Before a run's first estimate: forget what an earlier run in this process (a sweep's jobs
    run one after another) compiled and warned about, so that each run compiles its own steps,
    within dynamo's limit of recompilations per function (torch._dynamo.config.recompile_limit)."""
    _eager.clear()
    _warned.clear()
    if mode is Compile.compile:
        _compiled.cache_clear()
        torch._dynamo.reset()


@contextlib.contextmanager
def compiling(mode: Compile) -> Iterator[None]:
    """Within: the inner steps and meta-loss terms of `unroll` run compiled, where mode asks."""
    token = _active.set(mode is Compile.compile)
    try:
        yield
    finally:
        _active.reset(token)


def step(problem: Problem, meta_params: Tensors, state: Tensors, t: int) -> Tensors:
    """problem.step, compiled where the run asks for it and torch.compile can take it."""
    return _call("step", _step, problem, meta_params, state, t)


def meta_loss(problem: Problem, meta_params: Tensors, state: Tensors) -> torch.Tensor:
    """problem.meta_loss, compiled where the run asks for it and torch.compile can take it."""
    return _call("meta_loss", _meta_loss, problem, meta_params, state)


def _step(problem: Problem, meta_params: Tensors, state: Tensors, t: int) -> Tensors:
    return problem.step(meta_params, state, t)


def _meta_loss(problem: Problem, meta_params: Tensors, state: Tensors) -> torch.Tensor:
    return problem.meta_loss(meta_params, state)


def _call(name: str, function: Callable, problem: Problem, *args):
    if _active.get() and not is_in_torch_dispatch_mode(include_infra_modes=False):
        where = f"{_name(problem)}.{name}"
        if torch._C._functorch.peek_interpreter_stack() is not None:
            _warn(f"{_name(problem)}'s inner steps run eagerly inside this estimator's torch.func transform (jvp, "
                  "vmap), as a compiled function cannot be entered from inside one (pytorch/pytorch#128711)")
        elif where not in _eager:
            try:
                return _compiled(function)(problem, *args)
            except torch._dynamo.exc.Unsupported as error:  # raised while tracing, before anything ran
                _eager.add(where)
                _warn(f"{where} runs eagerly, as torch.compile cannot take it whole: {str(error).splitlines()[0]}")
    return function(problem, *args)


@functools.cache
def _compiled(function: Callable) -> Callable:
    return torch.compile(function, fullgraph=True, backend=BACKEND)


def _warn(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning(f"trainer.compile=compile: {message}")


def _name(problem: Problem) -> str:
    """The problem's class, seen through ES/PES's batching of it over particles."""
    return type(getattr(problem, "each", problem)).__name__
