"""Row-wise e4m3 quantisation, and GELU with the quantisation of its output in one pass over
the MLP's hidden activation (a Triton kernel, CUDA only), for FP8 inference.

Why: fc2's input is the widest activation (tokens x 3,072 at ViT-B). Quantising it row by row
needs each row's largest magnitude before the cast; compiled, inductor makes that a looped
reduction that computes GELU twice and reads the row twice, and in an H200 profile it took
17.0 ms of a 56 ms FP8 forward against 5.6 ms for the bf16 model's GELU (RESULTS.md, "Why FP8 is
slower here"). A whole row fits in one program's registers (3,072 values), so one kernel reads
fc1's output once, writes one byte per value and one scale per row.

The numbers: `quantize_rows` (defined here and shared with `videomae.fp8`: each row's largest
magnitude maps to 448) applied to GELU in float32, without rounding GELU's output to bf16 first.
On the GPU the GELU is its tanh form, as in the bf16 path's cuBLASLt epilogue
(`videomae.fused`): the exact form's erf made the kernel arithmetic-bound (0.68 ms a layer at
ViT-B batch 64, 1.3 TB/s), and the forms differ by at most 5e-4, far below e4m3's rounding
(1/16 of a value). Where Triton or CUDA is missing, `gelu_quantize_rows` runs the exact GELU then
`quantize_rows` as torch ops.
"""

from __future__ import annotations

import functools
import importlib.util

import torch
import torch.nn.functional as F

__all__ = ["gelu_quantize_rows", "quantize_rows", "kernel_available", "E4M3", "E4M3_MAX"]

E4M3 = torch.float8_e4m3fn
E4M3_MAX = float(torch.finfo(E4M3).max)  # 448
_LOW = (torch.bfloat16, torch.float16)
_MAX_WIDTH = 16384  # a row in one program's registers; wider rows take the torch ops
# checked without importing Triton: torch.compile traces `kernel_available`
_HAS_TRITON = importlib.util.find_spec("triton") is not None


@functools.cache
def _triton_kernel():
    """The compiled kernel's launcher (called only where `kernel_available` found Triton)."""
    import triton
    import triton.language as tl

    @triton.autotune(configs=[triton.Config({"BLOCK_M": m}, num_warps=w) for m in (1, 2, 4, 8) for w in (4, 8)],
                     key=["N"])
    @triton.jit
    def kernel(x_ptr, q_ptr, s_ptr, M, N: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr):
        rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)  # (BLOCK_M,)
        cols = tl.arange(0, BLOCK_N)  # (BLOCK_N,): N rounded up to a power of two
        inside = (rows[:, None] < M) & (cols[None, :] < N)  # (BLOCK_M, BLOCK_N)
        offsets = rows[:, None].to(tl.int64) * N + cols[None, :]
        x = tl.load(x_ptr + offsets, mask=inside, other=0.0)
        h = x.to(tl.float32)
        # GELU's tanh form, as h * sigmoid(2u): one exp2 and one reciprocal a value
        u = 0.7978845608028654 * h * (1.0 + 0.044715 * h * h)
        g = h / (1.0 + tl.exp2(-2.8853900817779268 * u))  # exp(-2u) = 2^(-2u log2 e)
        amax = tl.maximum(tl.max(tl.abs(g), axis=1), 1e-12)  # (BLOCK_M,)
        q = tl.clamp(g * (448.0 / amax)[:, None], -448.0, 448.0)
        tl.store(q_ptr + offsets, q.to(q_ptr.dtype.element_ty), mask=inside)
        tl.store(s_ptr + rows, amax / 448.0, mask=rows < M)

    def launch(x: torch.Tensor, q: torch.Tensor, scale: torch.Tensor) -> None:
        m, n = x.shape
        grid = lambda meta: (triton.cdiv(m, meta["BLOCK_M"]),)  # noqa: E731
        kernel[grid](x, q, scale, m, n, BLOCK_N=triton.next_power_of_2(n))

    return launch


def kernel_available(x: torch.Tensor) -> bool:
    """Whether the one-pass kernel runs for `x`: a contiguous 2-D bf16 / fp16 CUDA tensor whose
    rows fit one program, with Triton importable."""
    return (_HAS_TRITON and x.is_cuda and x.dtype in _LOW and x.dim() == 2 and x.is_contiguous()
            and x.shape[-1] <= _MAX_WIDTH)


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, K) -> (e4m3 (M, K), float32 scales (M, 1)) with x ~= q * scale, row by row.

    The scale maps each row's largest magnitude onto e4m3's largest value (448); a row of zeros
    gets a tiny scale rather than a division by zero."""
    amax = x.detach().abs().amax(dim=-1, keepdim=True).float().clamp(min=1e-12)
    scale = amax / E4M3_MAX
    q = (x.float() / scale).clamp(-E4M3_MAX, E4M3_MAX).to(E4M3)
    return q, scale


def _reference(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return quantize_rows(F.gelu(x))


@torch.library.custom_op("videomae::gelu_quantize_rows", mutates_args=())
def _fused(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    q = torch.empty(x.shape, dtype=E4M3, device=x.device)
    scale = torch.empty(x.shape[0], 1, dtype=torch.float32, device=x.device)
    _triton_kernel()(x, q, scale)
    return q, scale


@_fused.register_fake
def _(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x.new_empty(x.shape, dtype=E4M3), x.new_empty((x.shape[0], 1), dtype=torch.float32)


def gelu_quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, K) -> (e4m3 (M, K), float32 scales (M, 1)): `quantize_rows(gelu(x))`, in one pass
    (GELU's tanh form) where `kernel_available(x)`, an opaque op to torch.compile that CUDA
    graphs keep; else the exact GELU and `quantize_rows` as torch ops."""
    if kernel_available(x):
        return _fused(x)
    return _reference(x)
