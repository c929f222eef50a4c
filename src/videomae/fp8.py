"""FP8 linear layers for inference: e4m3 weights and activations, one scale per row.

Why: on Hopper-class GPUs an FP8 matrix product runs at up to twice the bf16 rate, and the
linear layers hold about three quarters of ViT-B's FLOPs at 1,568 tokens. Row-wise scales (one
per token for activations, one per output channel for weights) keep the error near e4m3's
own rounding (about 2^-4 relative per element) where a single scale per tensor would let one
large token crush the others. Everything else (LayerNorm, attention, GELU, residuals) stays in
bf16.

Why our own module over torch._scaled_mm and not a library: for inference it is one
quantisation and one product, and a module swap keeps the model's own forward (it works on
every torch >= 2.4 that has `_scaled_mm`'s row-wise form and needs no extra package). Training
in FP8 needs scaled products in the backward as well; that is torchao's float8 training
(`videomae.fp8.convert_for_training`), an optional dependency.

On a CPU the layers compute the same numbers in float32 (the e4m3 values times their scales):
the tests use that to check them on any torch; speed needs a GPU of compute capability 8.9 or
higher.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from . import fp8_gelu
from .fp8_gelu import E4M3, E4M3_MAX, quantize_rows

__all__ = ["Float8Linear", "quantize_float8", "quantize_rows", "float8_supported", "convert_for_training",
           "is_float8_model", "E4M3_MAX"]


def float8_supported(device: str | torch.device) -> bool:
    """Whether FP8 products run fast on `device`: a GPU of compute capability >= 8.9 (Ada,
    Hopper, Blackwell). (A CPU emulates them: right numbers, far slower than bf16.)"""
    device = torch.device(device)
    if not hasattr(torch, "_scaled_mm") or device.type != "cuda" or not torch.cuda.is_available():
        return False
    return torch.cuda.get_device_capability(device) >= (8, 9)


class Float8Linear(nn.Module):
    """`nn.Linear`'s function with e4m3 weights (one scale per output channel) and activations
    quantised per token on the fly; bias added in the product's epilogue; output `out_dtype`."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device: torch.device | str | None = None, out_dtype: torch.dtype = torch.bfloat16) -> None:
        super().__init__()
        if in_features % 16 or out_features % 16:
            raise ValueError(f"Float8Linear needs in_features and out_features divisible by 16 (FP8 products' "
                             f"tile), got {in_features} -> {out_features}")
        self.in_features, self.out_features, self.out_dtype = in_features, out_features, out_dtype
        self.register_buffer("weight", torch.zeros(out_features, in_features, dtype=E4M3, device=device))
        self.register_buffer("weight_scale", torch.ones(1, out_features, dtype=torch.float32, device=device))
        self.bias = nn.Parameter(torch.zeros(out_features, dtype=out_dtype, device=device),
                                 requires_grad=False) if bias else None

    @classmethod
    def from_linear(cls, linear: nn.Linear, out_dtype: torch.dtype = torch.bfloat16) -> Float8Linear:
        """The FP8 copy of a trained `nn.Linear` (its weight quantised row by row)."""
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None, linear.weight.device, out_dtype)
        q, scale = quantize_rows(linear.weight.detach())
        layer.weight.copy_(q)
        layer.weight_scale.copy_(scale.reshape(1, -1))
        if linear.bias is not None:
            layer.bias.data.copy_(linear.bias.detach().to(out_dtype))
        return layer

    def dequantized_weight(self) -> torch.Tensor:
        """(out, in) float32: what the quantised weight stands for."""
        return self.weight.float() * self.weight_scale.reshape(-1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._product(*quantize_rows(self._rows(x)), x.shape[:-1])

    def forward_gelu(self, x: torch.Tensor) -> torch.Tensor:
        """self(GELU(x)), the MLP's fc2 on fc1's output: on the GPU GELU (its tanh form) and the
        quantisation of its output run as one pass (`videomae.fp8_gelu`), elsewhere as torch ops."""
        return self._product(*fp8_gelu.gelu_quantize_rows(self._rows(x)), x.shape[:-1])

    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        """(..., K) -> (M, K), after checking K."""
        if x.shape[-1] != self.in_features:
            raise ValueError(f"Float8Linear expects inputs of {self.in_features} features, got {tuple(x.shape)}")
        return x.reshape(-1, self.in_features)

    def _product(self, q: torch.Tensor, scale: torch.Tensor, lead: torch.Size) -> torch.Tensor:
        """(M, K) e4m3 with (M, 1) scales -> (*lead, out_features) in out_dtype."""
        if not q.is_cuda:  # the same numbers in float32: torch's CPU _scaled_mm is per-tensor only before 2.12
            out = (q.float() * scale) @ self.dequantized_weight().t()  # (M, N)
            out = (out if self.bias is None else out + self.bias.float()).to(self.out_dtype)
            return out.reshape(*lead, self.out_features)
        out = torch._scaled_mm(q, self.weight.t(), scale_a=scale, scale_b=self.weight_scale, bias=self.bias,
                               out_dtype=self.out_dtype)  # (M, N)
        return out.reshape(*lead, self.out_features)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, e4m3 row-wise, out={self.out_dtype}")


def _encoder_linear(name: str, module: nn.Module) -> bool:
    """The default choice: every linear layer of the transformer blocks, none of the heads (the
    classifier and the decoder's pixel head are small, and their outputs are what users read)."""
    return isinstance(module, nn.Linear) and ".blocks." in f".{name}." \
        and module.in_features % 16 == 0 and module.out_features % 16 == 0


def quantize_float8(model: nn.Module, *, select: Callable[[str, nn.Module], bool] | None = None,
                    out_dtype: torch.dtype = torch.bfloat16) -> nn.Module:
    """Swap the model's linear layers for `Float8Linear` in place (default: every linear layer of
    the transformer blocks, encoder and decoder; `select(name, module)` chooses otherwise) and
    put the rest in `out_dtype`. Inference only: the FP8 weights take no gradient. Returns the
    model, which remembers it (`is_float8_model`)."""
    select = select or _encoder_linear
    chosen = [(name, module) for name, module in model.named_modules() if name and select(name, module)]
    if not chosen:
        raise ValueError("quantize_float8: no linear layer matched (is the model already quantised?)")
    model.to(out_dtype)
    for name, module in chosen:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        layer = Float8Linear.from_linear(module, out_dtype)
        if child == "qkv" and getattr(parent, "q_bias", None) is not None:
            # VideoMAE's q / v biases (the key has none) join the product's epilogue
            bias = torch.cat([parent.q_bias, torch.zeros_like(parent.v_bias), parent.v_bias]).detach()
            layer.bias = nn.Parameter(bias.to(out_dtype), requires_grad=False)
            del parent.q_bias, parent.v_bias
            parent.q_bias = parent.v_bias = None
        setattr(parent, child, layer)
    model.eval()
    model.float8 = "inference"
    return model


def is_float8_model(model: nn.Module) -> bool:
    return getattr(model, "float8", None) is not None


def convert_for_training(model: nn.Module, *, recipe: str = "rowwise",
                         select: Callable[[str, nn.Module], bool] | None = None) -> nn.Module:
    """FP8 training through torchao (`pip install torchao`): the chosen linear layers (default
    as `quantize_float8`) become torchao's `Float8Linear`, whose forward and both backward
    products run in FP8 with `recipe`'s scaling ("rowwise", "tensorwise" or
    "rowwise_with_gw_hp"). Run under bf16 autocast and `torch.compile` for speed (torchao's
    casts fuse only when compiled)."""
    try:
        from torchao.float8 import Float8LinearConfig, convert_to_float8_training
    except ImportError as err:
        raise ImportError("FP8 training needs torchao: pip install torchao (a version made for your torch)") from err
    select = select or _encoder_linear
    config = Float8LinearConfig.from_recipe_name(recipe)
    convert_to_float8_training(model, config=config, module_filter_fn=lambda module, name: select(name, module))
    # The weights stay high-precision parameters under their own names (checkpoints and
    # save_pretrained are unchanged); only the products run in FP8.
    model.float8_training = recipe
    return model
