"""Helpers for comparing with transformers, the reference implementation (a test dependency)."""

from __future__ import annotations

import torch

TINY = dict(
    image_size=32, patch_size=8, num_channels=3, num_frames=4, tubelet_size=2,
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
    decoder_hidden_size=16, decoder_num_hidden_layers=2, decoder_num_attention_heads=2,
    decoder_intermediate_size=32,
)

# A spread of shapes and options; each is compared class by class with transformers.
CONFIGS = {
    "default": {},
    "no_mean_pooling": dict(use_mean_pooling=False),
    "no_qkv_bias": dict(qkv_bias=False),
    "no_norm_pix": dict(norm_pix_loss=False),
    "one_channel": dict(num_channels=1),
    "six_frames": dict(num_frames=6),
    "tubelet_1": dict(num_frames=3, tubelet_size=1),
    "non_square": dict(image_size=(32, 48)),
    "gelu_tanh": dict(hidden_act="gelu_new", layer_norm_eps=1e-6),
}

MODEL_CLASSES = ["VideoMAEModel", "VideoMAEForPreTraining", "VideoMAEForVideoClassification"]


def tiny(**overrides):
    return {**TINY, **overrides}


def transformers_config(**fields):
    import transformers

    return transformers.VideoMAEConfig(**fields, attn_implementation="eager")


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random values everywhere (biases, norms, mask token too), so no term hides at zero."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return model


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖a − b‖ / ‖b‖ in float64."""
    a64, b64 = a.detach().double(), b.detach().double()
    denom = b64.norm().item()
    return (a64 - b64).norm().item() / (denom if denom > 0 else 1.0)


def compare_outputs(ours, theirs, tol: float = 1e-5) -> float:
    """Every field transformers returned, ours must return too, within `tol` relative."""
    worst = 0.0
    for key in theirs.keys():
        a, b = ours[key], theirs[key]
        if isinstance(b, (tuple, list)):
            assert isinstance(a, tuple) and len(a) == len(b), f"{key}: {len(a)} entries vs {len(b)}"
            pairs = list(zip(a, b))
        else:
            pairs = [(a, b)]
        for x, y in pairs:
            assert x.shape == y.shape, f"{key}: shape {tuple(x.shape)} vs {tuple(y.shape)}"
            err = rel_err(x, y)
            assert err <= tol, f"{key}: relative difference {err:.2e} > {tol:.0e}"
            worst = max(worst, err)
    return worst
