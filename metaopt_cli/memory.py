"""Peak memory of a piece of work.

CUDA: the caching allocator's peak of allocated bytes. CPU: the peak of the bytes held by
the tensors the work allocated, followed op by op (the quantity the CUDA number measures,
without the allocator's cache).
"""
import weakref
from collections.abc import Callable
from typing import TypeVar

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

T = TypeVar("T")


def measure_peak(work: Callable[[], T], device: torch.device) -> tuple[T, int]:
    """Run `work`; return its result and the peak bytes of tensor memory it added."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        result = work()
        torch.cuda.synchronize(device)
        return result, torch.cuda.max_memory_allocated(device) - before
    with _TensorMemory() as tracker:
        result = work()
    return result, tracker.peak


class _TensorMemory(TorchDispatchMode):
    """Sees every op's outputs below autograd and torch.func; counts each storage once, from
    its first tensor until the last tensor on it is freed."""

    def __init__(self):
        super().__init__()
        self.tensors_on: dict[int, int] = {}  # storage address -> live tensors using it
        self.bytes_of: dict[int, int] = {}
        self.live = self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor) and tensor.device.type == "cpu":
                self._track(tensor)
        return out

    def _track(self, tensor: torch.Tensor) -> None:
        try:
            storage = tensor.untyped_storage()
            address = storage.data_ptr()
        except RuntimeError:  # a tensor with no memory of its own (forward-mode's zero tangents)
            return
        if address == 0:
            return
        if address not in self.tensors_on:
            self.tensors_on[address] = 0
            self.bytes_of[address] = storage.nbytes()
            self.live += storage.nbytes()
            self.peak = max(self.peak, self.live)
        self.tensors_on[address] += 1
        weakref.finalize(tensor, self._release, address)

    def _release(self, address: int) -> None:
        self.tensors_on[address] -= 1
        if self.tensors_on[address] == 0:
            del self.tensors_on[address]
            self.live -= self.bytes_of.pop(address)
