"""Memory: what a training step needs, estimated from shapes, and what the machine has.

``fit`` calls :func:`check_memory` before the first step and refuses a run that
would not fit (:class:`NotEnoughMemory`) rather than be killed by the system half-way.
"""
from __future__ import annotations

import math
import os

import numpy as np

from ..tensor import Tensor

__all__ = ["estimate_memory", "available_memory", "check_memory", "format_bytes", "NotEnoughMemory"]


class NotEnoughMemory(MemoryError):
    """Training would need more memory than the machine has available (refused before it starts).

    Attributes: ``needed`` and ``available`` (bytes), ``batch_size``, and ``fits``
    (the largest batch size the estimate allows, 0 if none).
    """

    def __init__(self, message: str, needed: int, available: int, batch_size: int, fits: int):
        super().__init__(message)
        self.needed, self.available, self.batch_size, self.fits = needed, available, batch_size, fits


# What a training step keeps per sample, as a multiple of the forward's outputs: each
# op's output stays alive for backward, and backward makes gradients of the same
# sizes while it runs. Measured peaks (tracemalloc, SGD step) were 0.9 to 1.6 times
# the outputs for the MLP, LeNet-5 and AlexNet; 2 leaves a margin.
_ACTIVATION_FACTOR = 2
_WORKSPACE = 64 << 20        # op scratch buffers, the interpreter, the loader's batch in the making


def _optimizer_slots(optimizer) -> int:
    """Arrays of a parameter's size that ``optimizer`` keeps per parameter (2, Adam's, if unknown)."""
    if optimizer is None:
        return 2
    groups = getattr(optimizer, "param_groups", [{}])
    if type(optimizer).__name__ == "SGD":
        return int(any(g.get("momentum", 0) for g in groups))
    if type(optimizer).__name__ in ("Adam", "AdamW"):
        return 2 + int(any(g.get("amsgrad", False) for g in groups))
    return 2


def _forward_bytes_per_sample(model, input_shape: tuple) -> int:
    """Bytes of every intermediate array one forward of a single sample makes.

    The forward runs in evaluation mode (no dropout draw, no running statistic
    moves: the model and the random generators are left exactly as they were)
    with the graph recorded, and the graph is walked from the output.
    """
    was_training = model.training
    model.eval()
    try:
        x = Tensor(np.zeros((1,) + tuple(input_shape), dtype=np.float32), requires_grad=True)
        out = model(x)
    finally:
        model.train(was_training)
    total, seen, stack = 0, set(), [out]
    while stack:
        t = stack.pop()
        if id(t) in seen or not isinstance(t, Tensor):
            continue
        seen.add(id(t))
        if t._parents:                              # an op's output (leaves are inputs and weights)
            total += t.data.nbytes
            stack.extend(t._parents)
    return total


def _memory_parts(model, input_shape: tuple, optimizer=None) -> tuple[int, int]:
    """(bytes independent of the batch, bytes per sample) of a training step."""
    weights = sum(p.data.nbytes for p in model.parameters())
    buffers = sum(b.nbytes for _, b in model.named_buffers()) if hasattr(model, "named_buffers") else 0
    fixed = weights * (2 + _optimizer_slots(optimizer)) + buffers + _WORKSPACE    # weights, grads, state
    sample = 4 * math.prod(input_shape)                                           # float32 input
    per_sample = _ACTIVATION_FACTOR * _forward_bytes_per_sample(model, input_shape) + 2 * sample
    return fixed, per_sample


def estimate_memory(model, input_shape, batch_size: int, optimizer=None) -> int:
    """Bytes a training step of ``model`` on batches of ``batch_size`` needs, estimated from shapes.

    Args:
        model: the Module to train.
        input_shape: one sample's shape, (C, H, W) (no batch axis).
        batch_size: B.
        optimizer: the optimizer, for the size of its state (default: Adam's, two
            arrays per parameter).

    The estimate is weights × (2 + optimizer state) + B × (2 × the forward's
    intermediate arrays for one sample + the input) + a fixed workspace. One
    forward of a single sample in evaluation mode measures the intermediate
    arrays; the model is left unchanged. Intended to err on the high side:
    measured peaks of LeNet-5, the MLP and AlexNet were 40 to 80 % of it (leaving
    out the workspace).

    >>> # not run: building AlexNet allocates its 61 million weights (a few seconds)
    >>> estimate_memory(models.get("alexnet"), (3, 227, 227), 4096) / 2**30   # doctest: +SKIP
    64.5
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"estimate_memory: batch_size must be a positive int, got {batch_size!r}")
    input_shape = tuple(int(d) for d in input_shape)
    fixed, per_sample = _memory_parts(model, input_shape, optimizer)
    return fixed + int(batch_size) * per_sample


def available_memory() -> int | None:
    """Bytes this process can still allocate, or None where that cannot be found out.

    Linux: ``MemAvailable`` from /proc/meminfo, lowered to what the control group's
    limit leaves (a container's limit is what the kernel's OOM killer enforces);
    elsewhere the free physical pages (``os.sysconf``).
    """
    found = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError, IndexError):
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, ValueError, OSError):
            pass
    headroom = _cgroup_headroom()
    if headroom is not None:
        found.append(headroom)
    return min(found) if found else None


def _cgroup_headroom() -> int | None:
    """The control group's memory limit minus its usage (v2, then v1), or None without a limit."""
    def read(path):
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            return None

    folder = "/sys/fs/cgroup"
    limit, usage, stat = read(f"{folder}/memory.max"), read(f"{folder}/memory.current"), "memory.stat"
    if limit is None:
        folder += "/memory"
        limit, usage = read(f"{folder}/memory.limit_in_bytes"), read(f"{folder}/memory.usage_in_bytes")
    if not limit or not usage or not limit.isdigit() or not usage.isdigit():
        return None                                  # "max", or no cgroup files
    if int(limit) >= 1 << 60:                        # v1 writes "no limit" as a huge number
        return None
    # The usage counts the page cache too; the part not recently used is given back on demand.
    reclaimable = 0
    for line in (read(f"{folder}/{stat}") or "").splitlines():
        key, _, value = line.partition(" ")
        if key in ("inactive_file", "total_inactive_file") and value.isdigit():
            reclaimable = int(value)
    return max(int(limit) - int(usage) + reclaimable, 0)


def format_bytes(n: float) -> str:
    """A size for people: ``format_bytes(3 * 2**30)`` → "3.0 GB"; below a gigabyte in MB ("72.0 MB")."""
    return f"{n / 2 ** 30:.1f} GB" if n >= 2 ** 30 else f"{n / 2 ** 20:.1f} MB"


def check_memory(model, input_shape, batch_size: int, optimizer) -> None:
    """Raise NotEnoughMemory, with the estimate, if a step would not fit in the available memory.

    Does nothing where the available memory cannot be found out.
    """
    available = available_memory()
    if available is None:
        return
    fixed, per_sample = _memory_parts(model, tuple(input_shape), optimizer)
    allocated = sum(p.data.nbytes for p in model.parameters())     # the weights exist already
    needed = fixed + batch_size * per_sample
    if needed - allocated <= available:
        return
    fits = max(int((available + allocated - fixed) // per_sample), 0)
    advice = f"a batch size of at most {fits:,} should fit" if fits else "even a batch of one does not fit"
    raise NotEnoughMemory(
        f"training at batch size {batch_size:,} needs about {format_bytes(needed)} of memory "
        f"({format_bytes(fixed)} for the weights, their gradients and the optimizer's state, plus "
        f"{format_bytes(per_sample)} per sample for activations and their gradients), but only "
        f"{format_bytes(available)} is available; "
        f"{advice}. Refused before starting rather than be killed by the system half-way "
        f"(fit(check_memory=False) skips this check)", needed, available, batch_size, fits)

