"""FP8 inference on a GPU with FP8 units (skipped elsewhere): the one-pass GELU + row-wise
quantisation kernel against the two torch steps it replaces, and the FP8 model eager, compiled
and under CUDA graphs against bf16."""

from __future__ import annotations

import pytest
import torch

import videomae
from reference import rel_err
from videomae import fp8_gelu
from videomae.fp8 import float8_supported, quantize_float8, quantize_rows

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not (torch.cuda.is_available() and float8_supported("cuda")),
                                                  reason="needs a CUDA GPU with FP8 units")]

CFG = dict(image_size=64, patch_size=16, num_frames=8, tubelet_size=2, hidden_size=128, num_hidden_layers=2,
           num_attention_heads=4, intermediate_size=512, num_labels=10)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape", [(1, 3072), (1573, 3072), (64, 512), (7, 1000)])
def test_kernel_equals_tanh_gelu_then_quantize_rows(dtype, shape):
    pytest.importorskip("triton")
    g = torch.Generator(device="cuda").manual_seed(0)
    x = (torch.randn(shape, device="cuda", generator=g) * 4).to(dtype)
    x[0, :] = 0  # a row of zeros: zeros out, a tiny scale, no NaN
    if shape[0] > 2:
        x[1, :] *= 1000  # a row far larger than the others keeps its own scale
        x[2, :5] = torch.tensor([-1e4, -60.0, 0.0, 60.0, 1e4], dtype=dtype)  # exp2 saturates cleanly
    assert fp8_gelu.kernel_available(x)
    q, scale = fp8_gelu.gelu_quantize_rows(x)
    tanh_gelu = torch.nn.functional.gelu(x.float(), approximate="tanh")
    q_ref, scale_ref = quantize_rows(tanh_gelu)
    assert q.dtype == torch.float8_e4m3fn and q.shape == x.shape and scale.shape == (shape[0], 1)
    torch.testing.assert_close(scale, scale_ref, rtol=1e-5, atol=0)
    assert torch.all(q[0].float() == 0) and torch.isfinite(scale).all() and torch.isfinite(q.float()).all()
    # the kernel's exp2-and-reciprocal tanh differs from torch's in the last bits, which may move
    # a value across an e4m3 rounding boundary: at most one step (1/8 relative), on a few values
    diff = (q.float() - q_ref.float()).abs()
    assert float((diff > 0).float().mean()) < 5e-3
    assert torch.all(diff <= q_ref.float().abs() / 8 + 2 ** -9)
    # against the exact GELU, row by row: e4m3's own rounding (at most 1/16 of each value)
    exact = torch.nn.functional.gelu(x.float())[1:]
    back = (q.float() * scale)[1:]
    if len(exact):
        assert float(((back - exact).norm(dim=1) / exact.norm(dim=1)).max()) < 0.04


def test_fp8_model_on_the_gpu_eager_compiled_and_graphed_agree_with_bf16(monkeypatch):
    pytest.importorskip("triton")
    calls = []
    original = fp8_gelu._fused
    monkeypatch.setattr(fp8_gelu, "_fused", lambda x: calls.append(x.shape) or original(x))
    torch.manual_seed(0)
    model = videomae.VideoMAEForVideoClassification(videomae.VideoMAEConfig(**CFG)).cuda().eval()
    pixels = torch.randn(4, 8, 3, 64, 64, device="cuda", dtype=torch.bfloat16)
    with torch.inference_mode():
        reference = model.bfloat16()(pixels).logits.float()
        quantize_float8(model)
        eager = model(pixels).logits.float()
        assert len(calls) == CFG["num_hidden_layers"]
        compiled = torch.compile(model)(pixels).logits.float()
        graphed = torch.compile(model, mode="reduce-overhead")
        for _ in range(3):  # warm-up, record, replay
            replayed = graphed(pixels).logits.float()
    monkeypatch.setattr(fp8_gelu, "kernel_available", lambda x: False)
    with torch.inference_mode():
        unfused = model(pixels).logits.float()
    error = rel_err(eager, reference)  # FP8's own error against bf16
    assert error < 0.05
    # the kernel (tanh GELU, no bf16 rounding before the cast) moves the logits far less than FP8 does
    assert rel_err(eager, unfused) < max(error / 2, 5e-3)
    assert rel_err(compiled, eager) < 1e-2 and rel_err(replayed, eager) < 1e-2
