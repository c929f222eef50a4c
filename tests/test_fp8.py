"""FP8 inference layers (videomae.fp8): the numbers, checked with torch's CPU emulation of
FP8 products; the speed is a GPU matter (benchmarks/gpu.py --fp8)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import videomae
from videomae.fp8 import E4M3_MAX, Float8Linear, is_float8_model, quantize_float8, quantize_rows

TINY = dict(image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=64, num_hidden_layers=2,
            num_attention_heads=2, intermediate_size=128, decoder_hidden_size=32, decoder_num_hidden_layers=1,
            decoder_num_attention_heads=2, decoder_intermediate_size=64, num_labels=5)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().float(), b.detach().float()
    return float((a - b).norm() / b.norm())


def test_quantize_rows_scales_each_row_to_the_e4m3_range() -> None:
    x = torch.randn(6, 32) * torch.tensor([1e-3, 1.0, 10.0, 1e3, 0.0, 5.0]).reshape(-1, 1)
    q, scale = quantize_rows(x)
    assert q.dtype == torch.float8_e4m3fn and scale.shape == (6, 1)
    back = q.float() * scale
    for i in (0, 1, 2, 3, 5):  # every row, large or small, keeps e4m3's relative precision
        assert q.float()[i].abs().max() == E4M3_MAX
        assert rel(back[i], x[i]) < 0.05
    assert torch.all(back[4] == 0)  # a row of zeros stays zeros (no division by zero)


def test_float8_linear_matches_the_linear_it_replaces() -> None:
    torch.manual_seed(0)
    linear = nn.Linear(64, 48)
    x = torch.randn(3, 7, 64)
    layer = Float8Linear.from_linear(linear)
    assert layer.weight.dtype == torch.float8_e4m3fn and layer.bias.dtype == torch.bfloat16
    out = layer(x.bfloat16())
    assert out.shape == (3, 7, 48) and out.dtype == torch.bfloat16
    err = rel(out, linear(x))
    assert 1e-4 < err < 0.05, err  # e4m3 rounding: visible, small
    with pytest.raises(ValueError, match="divisible by 16"):
        Float8Linear.from_linear(nn.Linear(64, 10))
    with pytest.raises(ValueError, match="64 features"):
        layer(torch.randn(2, 32))


@pytest.mark.parametrize("cls", ["VideoMAEForVideoClassification", "VideoMAEForPreTraining"])
def test_quantize_float8_swaps_every_block_linear_and_keeps_the_function(cls: str) -> None:
    torch.manual_seed(0)
    model = getattr(videomae, cls)(videomae.VideoMAEConfig(**TINY)).eval()
    x = torch.randn(2, 4, 3, 32, 32)
    mask = videomae.tube_mask(model.config.grid_size, 0.75, 2)
    args = (x,) if cls.endswith("Classification") else (x, mask)
    args = tuple(a.bfloat16() if a.is_floating_point() else a for a in args)
    with torch.no_grad():
        reference = model.to(torch.bfloat16)(*args).logits
    quantize_float8(model)
    assert is_float8_model(model)
    names = [n for n, m in model.named_modules() if isinstance(m, Float8Linear)]
    assert len(names) == 4 * 2 + (4 if cls.endswith("PreTraining") else 0), names
    # heads stay bf16 Linears; the q / v biases moved into the qkv product's epilogue
    assert not any(n.endswith(("classifier", "decoder.head", "encoder_to_decoder")) for n in names)
    assert all(block.attn.q_bias is None for block in model.videomae.blocks)
    with torch.no_grad():
        out = model(*args).logits
    assert out.dtype == torch.bfloat16
    assert rel(out, reference) < 0.08, rel(out, reference)


def test_quantize_float8_refuses_a_model_with_nothing_to_swap() -> None:
    with pytest.raises(ValueError, match="no linear layer"):
        quantize_float8(nn.Sequential(nn.Linear(4, 4)))


def test_from_pretrained_float8_loads_for_fp8_inference_and_refuses_to_save(tmp_path) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    model = videomae.VideoMAEForVideoClassification(videomae.VideoMAEConfig(**TINY)).eval()
    model.save_pretrained(tmp_path / "m")
    fp8 = videomae.VideoMAEForVideoClassification.from_pretrained(tmp_path / "m", dtype="float8")
    assert is_float8_model(fp8) and isinstance(fp8.videomae.blocks[0].mlp.fc1, Float8Linear)
    x = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        assert rel(fp8(x.bfloat16()).logits, model(x).logits) < 0.08
    with pytest.raises(ValueError, match="FP8"):
        fp8.save_pretrained(tmp_path / "again")


def test_cli_dtype_float8_needs_a_gpu_with_fp8_units(tmp_path) -> None:  # noqa: ANN001
    """On a machine without FP8 units (CPU here) `--dtype float8` is a one-line error, not a slow
    emulation."""
    import subprocess
    import sys

    model = videomae.VideoMAEForVideoClassification(videomae.VideoMAEConfig(**TINY))
    model.save_pretrained(tmp_path / "m")
    from videomae.data.synthetic import render_clip, write_video
    import numpy as np

    video = write_video(tmp_path / "v.mp4", render_clip(0, np.random.default_rng(0), num_frames=8, size=32))
    done = subprocess.run([sys.executable, "-m", "videomae", "classify", str(video), "--model", str(tmp_path / "m"),
                           "--dtype", "float8", "--device", "cpu"], capture_output=True, text=True)
    assert done.returncode != 0 and "FP8 matrix units" in done.stderr and "Traceback" not in done.stderr


def test_fc2_after_gelu_is_gelu_then_quantise_and_the_mlp_takes_it(monkeypatch) -> None:  # noqa: ANN001
    """`forward_gelu` (one pass on the GPU; torch ops here) computes fc2(GELU(h)) exactly as the
    two steps do, and every block's MLP of an FP8 model takes it."""
    from videomae import fp8_gelu

    torch.manual_seed(0)
    layer = Float8Linear.from_linear(nn.Linear(128, 64))
    h = torch.randn(2, 9, 128).bfloat16() * 3
    assert not fp8_gelu.kernel_available(h.reshape(-1, 128))  # no CUDA: the torch ops
    assert torch.equal(layer.forward_gelu(h), layer(torch.nn.functional.gelu(h)))
    with pytest.raises(ValueError, match="128 features"):
        layer.forward_gelu(torch.randn(2, 64).bfloat16())
    calls = []
    original = fp8_gelu.gelu_quantize_rows
    monkeypatch.setattr(fp8_gelu, "gelu_quantize_rows", lambda x: calls.append(x.shape) or original(x))
    model = quantize_float8(videomae.VideoMAEForVideoClassification(videomae.VideoMAEConfig(**TINY)))
    with torch.no_grad():
        model(torch.randn(2, 4, 3, 32, 32).bfloat16())
    assert calls == [(2 * model.config.num_patches, TINY["intermediate_size"])] * TINY["num_hidden_layers"]
