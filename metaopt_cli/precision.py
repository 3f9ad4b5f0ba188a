"""trainer.precision: the arithmetic a meta-gradient estimate runs in.

- fp32: float32 throughout, TF32 off (torch leaves cuDNN's convolutions on TF32 by default).
- tf32: float32 matmuls and convolutions on the TF32 tensor cores of CUDA GPUs.
- bf16: the inner loop (a problem's init, step, meta_loss and inner_objective) under bfloat16
  autocast, its state and losses handed back in float32. θ stays float32 leaves, and what an
  estimator does with the losses and gradients (backprop's outer backward, ES's and PES's sums
  over perturbations, forward mode's products with the tangents, implicit's solver) runs in
  float32: the meta-gradient is accumulated in float32. Autocast around the whole estimate would
  instead turn ES's and forward mode's sums into bfloat16 matmuls.
"""
import contextlib
import functools

import torch

from .config.commands import DType, Precision
from .errors import UserError

INNER_LOOP = ("init", "step", "meta_loss", "inner_objective")  # the Problem's methods that compute
AMPERE = (8, 0)  # the compute capability from which GPUs have TF32 and bfloat16 tensor cores


@contextlib.contextmanager
def precision(kind: Precision | str, device: torch.device):
    """Everything inside at `kind`; bf16 autocasts all of it, as scripts/bench_maml.py does
    around the whole meta-iterations of three libraries alike."""
    if Precision(kind) is Precision.bf16:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
        return
    with matmuls(kind):
        yield


@contextlib.contextmanager
def matmuls(kind: Precision | str):
    """float32 matmuls and convolutions on TF32 tensor cores for tf32, in full float32 otherwise
    (bf16's float32 part included): what an estimate runs in."""
    tf32 = Precision(kind) is Precision.tf32
    saved = (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32)
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    torch.backends.cudnn.allow_tf32 = tf32
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(saved[0])
        torch.backends.cudnn.allow_tf32 = saved[1]


def task_at(task, kind: Precision | str):
    """The task, whose sampled problems run their inner loop at `kind` (only bf16 changes them;
    fp32 and tf32 are matmuls()'s). Wrapping the task rather than one meta-step's problem
    reaches the problems an online estimator samples again on resume."""
    return _BF16Problems(task) if Precision(kind) is Precision.bf16 else task


def problem_at(problem, kind: Precision | str):
    return _BF16InnerLoop(problem) if Precision(kind) is Precision.bf16 else problem


def estimate_at(estimator, kind: Precision | str, problem, meta_params, generator):
    """The estimator's meta-gradient at precision `kind`, as a meta-step of `metaopt train` takes
    it (gradcheck and bench measure this)."""
    with matmuls(kind):
        return estimator.estimate(problem_at(problem, kind), meta_params, generator)[0]


class _BF16InnerLoop:
    """A problem whose inner loop runs under bfloat16 autocast; its new state and its losses come
    back in θ's dtype, so the state carried between steps (and checkpointed) stays float32 as a
    mixed-precision run's master weights do. Everything else is the problem's own, looked up on
    it; the problems parts() and select() return are wrapped in turn."""

    def __init__(self, problem):
        self.problem = problem

    def __getattr__(self, name: str):
        value = getattr(self.problem, name)  # an AttributeError keeps hasattr() honest
        if name in INNER_LOOP:
            return functools.partial(_autocast, value)
        if name == "parts":
            return lambda: [_BF16InnerLoop(part) for part in value()]
        if name == "select":
            return lambda runs: _BF16InnerLoop(value(runs))
        return value


def _autocast(method, meta_params, *args):
    like = next(iter(meta_params.values()))
    with torch.autocast(like.device.type, dtype=torch.bfloat16):
        result = method(meta_params, *args)
    if isinstance(result, dict):  # a state
        return {name: value.to(like.dtype) if value.is_floating_point() else value for name, value in result.items()}
    return result.to(like.dtype)


class _BF16Problems:
    """A task whose sample() gives problems with a bfloat16 inner loop; the rest is the task's."""

    def __init__(self, task):
        self.task = task

    def sample(self, generator: torch.Generator, count: int):
        return _BF16InnerLoop(self.task.sample(generator, count))

    def __getattr__(self, name: str):
        return getattr(self.task, name)


def supported(device: torch.device) -> list[Precision]:
    """The precisions the device runs natively, fp32 first."""
    return [kind for kind in Precision if _lacks(kind, device) is None]


def check_precision(kind: Precision | str, dtype: DType | str, device: torch.device,
                    knob: str = "trainer.precision") -> None:
    """Fail with a UserError where `kind` cannot run on the device, or with trainer.dtype."""
    kind = Precision(kind)
    if kind is not Precision.fp32 and DType(dtype) is not DType.float32:
        raise UserError(f"{knob}={kind.name} lowers the precision of float32 arithmetic, and trainer.dtype="
                        f"{DType(dtype).name} runs in double: use trainer.dtype=float32, or {knob}=fp32")
    reason = _lacks(kind, device)
    if reason is not None:
        instead = " or ".join(other.name for other in supported(device))
        raise UserError(f"{knob}={kind.name} {reason}: use {knob}={instead}")


def _lacks(kind: Precision, device: torch.device) -> str | None:
    """Why the device cannot run `kind` natively, or None."""
    if kind is Precision.tf32:
        if device.type != "cuda":
            return f"uses the TF32 tensor cores of CUDA GPUs, and this run is on {device.type}"
        if torch.cuda.get_device_capability(device) < AMPERE:
            return f"needs TF32 tensor cores (compute capability 8.0 or newer), which {_gpu(device)} lacks"
    if kind is Precision.bf16:
        if device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
            return f"needs bfloat16 arithmetic (compute capability 8.0 or newer), which {_gpu(device)} lacks"
        if not torch.amp.is_autocast_available(device.type):
            return f"autocasts to bfloat16, which this torch cannot do on {device.type}"
    return None


def _gpu(device: torch.device) -> str:
    major, minor = torch.cuda.get_device_capability(device)
    return f"{torch.cuda.get_device_name(device)} ({major}.{minor})"
