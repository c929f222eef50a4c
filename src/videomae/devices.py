"""Where a model runs and in what precision: one resolution for the CLI, the inference
pipeline and training (single process or one GPU per torchrun process)."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path

import torch

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# /proc/cpuinfo flags of CPUs that multiply bf16 matrices in hardware, best first, and their names.
_BF16_CPU_FLAGS = (("amx_bf16", "AMX bf16"), ("avx512_bf16", "AVX512-BF16"))


def resolve_device(name: str | torch.device, local_rank: int = 0) -> torch.device:
    """'auto' -> this process's GPU when CUDA is available, else the CPU; 'cuda' -> the GPU of
    `local_rank` (0 outside torchrun); 'cpu', 'cuda:N' as given."""
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = f"cuda:{local_rank}"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device {name!r}: expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: CUDA is not available here; use cpu")
    return device


@functools.cache
def cpu_bf16_units() -> str | None:
    """The CPU's bf16 matrix units ('AMX bf16', 'AVX512-BF16'), or None without them.

    With them a ViT-B 16x224 forward runs about 3x faster in bf16 than in fp32 (AVX512-BF16, one
    core: 1.4 s against 4.0 s; 4x reported with AMX), logits within 5e-3 relative; without them
    bf16 is emulated and slower than fp32. Read from /proc/cpuinfo, so None off Linux: there
    'auto' keeps float32 on the CPU."""
    try:
        return bf16_units_in(Path("/proc/cpuinfo").read_text())
    except OSError:
        return None


def bf16_units_in(cpuinfo: str) -> str | None:
    """`cpu_bf16_units` of a /proc/cpuinfo text (its first `flags` line)."""
    flags = next((set(line.split(":", 1)[1].split()) for line in cpuinfo.splitlines() if line.startswith("flags")),
                 set())
    return next((name for flag, name in _BF16_CPU_FLAGS if flag in flags), None)


def resolve_dtype(name: str | torch.dtype, device: torch.device) -> torch.dtype:
    """'auto' -> bfloat16 on CUDA and on CPUs with bf16 matrix units (`cpu_bf16_units`), float32
    on other CPUs; else float32, bfloat16 or float16."""
    if isinstance(name, torch.dtype):
        return name
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" or cpu_bf16_units() else torch.float32
    if name not in _DTYPES:
        raise ValueError(f"dtype {name!r}: expected auto, {', '.join(_DTYPES)}")
    return _DTYPES[name]


def dtype_reason(name: str | torch.dtype, device: torch.device) -> str:
    """Why `resolve_dtype(name, device)` chose what it chose, for the line the CLI and training
    print ("CPU has AMX bf16"): on the CPU 'auto' depends on the machine, so say which way."""
    if name != "auto":
        return "as asked"
    if device.type != "cpu":
        return f"auto on {device.type.upper()}"
    units = cpu_bf16_units()
    return f"CPU has {units}" if units else "CPU has no AMX or AVX512-BF16"


def describe_dtype(name: str | torch.dtype, device: torch.device) -> str:
    """One line: 'dtype: bfloat16 (CPU has AMX bf16)'."""
    return f"dtype: {str(resolve_dtype(name, device)).removeprefix('torch.')} ({dtype_reason(name, device)})"


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Mixed precision in `dtype`, or nothing for float32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _available_cpus() -> int:
    """CPUs this process may use, shared among the processes torchrun starts on this machine."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, cpus // max(int(os.environ.get("LOCAL_WORLD_SIZE", "1")), 1))


@contextlib.contextmanager
def model_threads(device: torch.device, workers: int) -> Iterator[None]:
    """On the CPU, run the model on the CPUs the decoding workers leave (at least one), and
    restore torch's thread count after. With both on every CPU they contend: on 2 CPUs the demo's
    pretraining waited for data 24% of the time with 2 model threads beside 1 worker, 3% with 1,
    and ran 7% faster (benchmarks/RESULTS.md)."""
    previous = torch.get_num_threads()
    if device.type == "cpu" and workers > 0:
        torch.set_num_threads(min(previous, max(1, _available_cpus() - workers)))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def forward_streams(device: torch.device) -> Iterator[int]:
    """How many forward passes the inference pipeline runs at once: on the CPU as many as torch
    has threads, each pass on one thread (torch set to one thread an op meanwhile, restored
    after); elsewhere one. Split over threads, every op ends with its threads waiting for each
    other, so when anything else takes a core (the decoding worker, other programs) the whole
    model waits for its slowed thread; whole passes on one thread each never wait for each other.
    Measured on 2 cores shared with other work, ViT-B bf16, one decoding worker: a median 2.5 s
    a video this way against 13.4 s with passes split over 2 threads (benchmarks/RESULTS.md)."""
    streams = torch.get_num_threads() if device.type == "cpu" else 1
    if streams == 1:
        yield 1
        return
    torch.set_num_threads(1)
    try:
        yield streams
    finally:
        torch.set_num_threads(streams)


def default_num_workers() -> int:
    """Decoding worker processes for this process: the CPUs it may use (shared among the
    processes torchrun starts on this machine), but one, which the model's process needs."""
    return max(0, _available_cpus() - 1)


def one_thread_worker(_: int = 0) -> None:
    """A DataLoader `worker_init_fn`: one torch thread per decoding worker. The workers already
    fill the CPUs; each with torch's default of a thread per CPU, their resizes contend (measured:
    embedding at half the decode rate on 16 CPUs)."""
    torch.set_num_threads(1)


__all__ = ["resolve_device", "resolve_dtype", "cpu_bf16_units", "bf16_units_in", "dtype_reason", "describe_dtype",
           "autocast", "forward_streams", "default_num_workers", "one_thread_worker", "model_threads"]
