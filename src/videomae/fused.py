"""fc1 and its GELU as one cuBLASLt call on the GPU, for inference in bf16 / fp16.

Why: the GELU between the MLP's two products is a separate pass over the widest activation
(tokens x 3,072 at ViT-B), about 11% of a bf16 forward on an H200. cuBLASLt can apply GELU to
the product's accumulator before it is written (`torch._addmm_activation(..., use_gelu=True)`):
ViT-B inference at batch 16 went from 1,175 to 1,255 clips/s, both compiled (`benchmarks/gpu.py
--no-fused-gelu`, RESULTS.md). The epilogue computes the tanh form of GELU in float32; it
differs from the exact form by at most 5e-4, below bf16's and fp16's rounding of the values
where it differs (spacing 8e-3 and 1e-3 near 2), and the logits of a random ViT-B moved 3e-3
relative, the size of bf16's own error against float32.

Only where that holds and nothing is lost: CUDA tensors in bf16 / fp16 (or CUDA autocast to
one, which is how `classify` / `embed` run; the product then takes fc1's weights in that dtype,
as autocast's own linear would), gradients off, a plain `nn.Linear` fc1 with a bias (not one a
quantizer swapped or wrapped, no hooks on it), a GELU activation. `attn_implementation="eager"`
keeps the reference computation (the exact GELU as a separate pass), as it keeps the explicit
attention.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["fused_dtype", "fc1_gelu"]

_LOW = (torch.bfloat16, torch.float16)


def _autocast_dtype() -> torch.dtype | None:
    """The dtype CUDA autocast runs products in, when it is on."""
    if not torch.is_autocast_enabled():  # no argument: CUDA's autocast, on every torch >= 2.4
        return None
    get = getattr(torch, "get_autocast_dtype", None)
    return get("cuda") if get is not None else torch.get_autocast_gpu_dtype()


def fused_dtype(fc1: nn.Module, act: nn.Module, x: torch.Tensor) -> torch.dtype | None:
    """The dtype the fused call runs in where it computes what fc1 then act would (the
    conditions above), else None."""
    if not (x.is_cuda and not torch.is_grad_enabled() and type(act) is nn.GELU and type(fc1) is nn.Linear
            and fc1.bias is not None and type(fc1.weight) is nn.Parameter
            and not fc1._forward_hooks and not fc1._forward_pre_hooks):
        return None
    dtype = _autocast_dtype() or (x.dtype if fc1.weight.dtype == x.dtype else None)
    return dtype if dtype in _LOW else None


def fc1_gelu(fc1: nn.Linear, x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """GELU(fc1(x)) in one call, in `dtype` (None: x's): (..., C) -> (..., hidden). On the CPU
    torch runs the product, then the exact GELU; on CUDA the GELU (tanh form) is in cuBLASLt's
    epilogue."""
    dtype = dtype or x.dtype
    flat = x.reshape(-1, x.shape[-1]).to(dtype)  # (B*N, C): cuBLASLt's epilogue path takes 2-D operands
    hidden = torch._addmm_activation(fc1.bias.to(dtype), flat, fc1.weight.to(dtype).t(), use_gelu=True)
    return hidden.reshape(*x.shape[:-1], hidden.shape[-1])
