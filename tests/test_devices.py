"""Where and in what precision models run: 'auto' is bf16 on CPUs with bf16 matrix units (AMX,
AVX512-BF16) and fp32 on other CPUs. Not every machine has those units, so the tests force both
answers of the detection."""

from __future__ import annotations

import logging

import pytest
import torch

from videomae import VideoMAEConfig, VideoMAEForVideoClassification, devices
from videomae.train.options import BaseOptions
from videomae.train.runner import resolve_precision, run_context

CPU = torch.device("cpu")
AVX512 = "flags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni"


@pytest.fixture
def amx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "cpu_bf16_units", lambda: "AMX bf16")


@pytest.fixture
def no_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "cpu_bf16_units", lambda: None)


@pytest.mark.parametrize("cpuinfo, expected", [
    (f"processor\t: 0\n{AVX512} avx512_bf16 amx_bf16 amx_tile\n", "AMX bf16"),
    (f"processor\t: 0\n{AVX512} avx512_bf16\n", "AVX512-BF16"),
    (f"processor\t: 0\n{AVX512}\n", None),
    (f"{AVX512}\n\nprocessor\t: 1\nflags\t\t: avx512_bf16\n", None),  # the first CPU's flags decide
    ("processor\t: 0\nFeatures\t: fp asimd bf16\n", None),  # ARM: not measured, so float32
    ("", None),
])
def test_bf16_units_are_read_from_the_cpu_flags(cpuinfo: str, expected: str | None) -> None:
    assert devices.bf16_units_in(cpuinfo) == expected


def test_auto_is_bfloat16_on_a_cpu_with_bf16_units(amx: None) -> None:
    assert devices.resolve_dtype("auto", CPU) == torch.bfloat16
    assert devices.describe_dtype("auto", CPU) == "dtype: bfloat16 (CPU has AMX bf16)"
    assert devices.resolve_dtype("float32", CPU) == torch.float32  # asked for: kept
    assert devices.describe_dtype("float32", CPU) == "dtype: float32 (as asked)"


def test_auto_is_float32_on_other_cpus_and_bfloat16_on_cuda(no_bf16: None) -> None:
    assert devices.resolve_dtype("auto", CPU) == torch.float32
    assert devices.describe_dtype("auto", CPU) == "dtype: float32 (CPU has no AMX or AVX512-BF16)"
    assert devices.resolve_dtype("auto", torch.device("cuda:0")) == torch.bfloat16
    assert devices.describe_dtype("auto", torch.device("cuda:0")) == "dtype: bfloat16 (auto on CUDA)"


def test_training_precision_auto_follows_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "cpu_bf16_units", lambda: "AVX512-BF16")
    assert resolve_precision("auto", CPU) == ("bf16", torch.bfloat16)
    assert resolve_precision("fp32", CPU) == ("fp32", None)
    monkeypatch.setattr(devices, "cpu_bf16_units", lambda: None)
    assert resolve_precision("auto", CPU) == ("fp32", None)


@pytest.mark.parametrize("units, precision, dtype", [("AMX bf16", "bf16", torch.bfloat16), (None, "fp32", None)])
def test_a_training_run_says_which_precision_auto_chose(monkeypatch: pytest.MonkeyPatch, caplog, tmp_path,
                                                        units: str | None, precision: str, dtype) -> None:
    monkeypatch.setattr(devices, "cpu_bf16_units", lambda: units)
    with caplog.at_level(logging.INFO, logger="videomae.train"):
        with run_context(BaseOptions(output_dir=str(tmp_path), device="cpu")) as ctx:
            assert (ctx.precision, ctx.autocast_dtype) == (precision, dtype)
    reason = f"CPU has {units}" if units else "CPU has no AMX or AVX512-BF16"
    assert f"precision: {precision} ({reason})" in caplog.text


def test_the_bf16_path_runs_in_bf16_and_stays_close_to_fp32() -> None:
    """What 'auto' turns on with bf16 units: autocast to bf16. Close to fp32 (the 4e-3 relative
    measured on ViT-B is looser on this tiny random model), and not equal, so it did run in bf16."""
    torch.manual_seed(0)
    config = VideoMAEConfig(image_size=32, patch_size=8, num_frames=4, hidden_size=64, num_hidden_layers=2,
                            num_attention_heads=4, intermediate_size=128, num_labels=5)
    model = VideoMAEForVideoClassification(config).eval()
    pixels = torch.randn(2, 4, 3, 32, 32)
    with torch.inference_mode():
        fp32 = model(pixels).logits
        with devices.autocast(CPU, torch.bfloat16):
            bf16 = model(pixels).logits
    assert bf16.dtype == torch.bfloat16
    relative = (bf16.float() - fp32).norm() / fp32.norm()
    assert 0 < relative < 2e-2
