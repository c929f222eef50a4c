"""fc1 + GELU in one call (videomae.fused): the same function as the two apart; taken only where
that holds (the GPU side runs in tests/test_gpu.py)."""

from __future__ import annotations

import torch
from torch import nn

import videomae
from reference import tiny
from videomae import fused


def test_fc1_gelu_equals_fc1_then_gelu():
    torch.manual_seed(0)
    fc1, act = nn.Linear(16, 48), nn.GELU()
    x = torch.randn(2, 7, 16)  # (B, N, C): flattened for the call, shaped back after
    out = fused.fc1_gelu(fc1, x)
    assert out.shape == (2, 7, 48)
    torch.testing.assert_close(out, act(fc1(x)), rtol=1e-5, atol=1e-6)
    low = fused.fc1_gelu(fc1, x, torch.bfloat16)  # as under autocast: the operands in bf16
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), act(fc1.bfloat16()(x.bfloat16())).float(), rtol=2e-2, atol=2e-2)


def test_not_taken_on_the_cpu_in_float32_with_gradients_or_other_layers():
    fc1, act = nn.Linear(16, 48), nn.GELU()
    x = torch.randn(3, 16)
    with torch.no_grad():
        assert fused.fused_dtype(fc1, act, x) is None  # a CPU tensor
        assert fused.fused_dtype(fc1, act, x.bfloat16()) is None
        assert fused.fused_dtype(fc1, nn.ReLU(), x) is None
        assert fused.fused_dtype(nn.Linear(16, 48, bias=False), act, x) is None


def test_eager_attention_also_keeps_the_gelu_apart():
    model = videomae.VideoMAEModel(videomae.VideoMAEConfig(**tiny(), attn_implementation="eager"))
    assert all(m.explicit for m in model.modules() if isinstance(m, videomae.modeling.Mlp))
    model = videomae.VideoMAEModel(videomae.VideoMAEConfig(**tiny()))
    assert not any(m.explicit for m in model.modules() if isinstance(m, videomae.modeling.Mlp))
