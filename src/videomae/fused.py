"""fc1 and its GELU as one cuBLASLt call on the GPU, for inference in bf16 / fp16.

Why: the GELU between the MLP's two products is a separate pass over the widest activation
(tokens x 3,072 at ViT-B), about 11% of a bf16 forward on an H200. cuBLASLt can apply GELU to
the product's accumulator before it is written (`torch._addmm_activation(..., use_gelu=True)`):
ViT-B inference at batch 16 went from 1,175 to 1,255 clips/s, both compiled (`benchmarks/gpu.py
--no-fused-gelu`, RESULTS.md). The epilogue computes the tanh form of GELU in float32; it
differs from the exact form by at most 5e-4, below bf16's and fp16's rounding of the values
where it differs (spacing 8e-3 and 1e-3 near 2), and the logits of a random ViT-B moved 3e-3
relative, the size of bf16's own error against float32.

Only where that holds and nothing is lost: CUDA tensors in bf16 / fp16, gradients off, a plain
`nn.Linear` fc1 with a bias (not one a quantizer swapped or wrapped, no hooks on it), a GELU
activation. `attn_implementation="eager"` keeps the reference computation (the exact GELU as a
separate pass), as it keeps the explicit attention.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["eligible", "fc1_gelu"]


def eligible(fc1: nn.Module, act: nn.Module, x: torch.Tensor) -> bool:
    """Whether the fused call computes what fc1 then act would (the conditions above)."""
    return (x.is_cuda and x.dtype in (torch.bfloat16, torch.float16) and not torch.is_grad_enabled()
            and type(act) is nn.GELU and type(fc1) is nn.Linear and fc1.bias is not None
            and type(fc1.weight) is nn.Parameter and fc1.weight.dtype == x.dtype
            and not fc1._forward_hooks and not fc1._forward_pre_hooks)


def fc1_gelu(fc1: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """GELU(fc1(x)) in one call: (..., C) -> (..., hidden). On the CPU torch runs the product,
    then the exact GELU; on CUDA the GELU (tanh form) is in cuBLASLt's epilogue."""
    flat = x.reshape(-1, x.shape[-1])  # (B*N, C): cuBLASLt's epilogue path takes 2-D operands
    hidden = torch._addmm_activation(fc1.bias, flat, fc1.weight.t(), use_gelu=True)  # (B*N, hidden)
    return hidden.reshape(*x.shape[:-1], hidden.shape[-1])
