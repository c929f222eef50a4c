"""Attention kernels at VideoMAE's shapes: each SDPA backend (and FlexAttention), timed and checked.

Shapes (bf16, 12 heads of 64, ViT-B): 1,568 tokens (16x224 clips, inference and fine-tuning,
batch 16) and 160 tokens (the pretraining encoder's visible 10%, batch 64). For each backend:
forward and forward + backward milliseconds (CUDA events, median), TFLOP/s (forward 4*B*H*N^2*D;
forward + backward counted as 3.5x that), the largest difference from the float32 math
reference (relative norm), and which backend torch picks by itself (the kernel names in a
profile of a plain call).

    python benchmarks/attention.py [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu import Bench, bench  # noqa: E402

SHAPES = {"1568 tokens, batch 16": (16, 12, 1568, 64), "160 tokens, batch 64": (64, 12, 160, 64)}
BACKENDS = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
            "efficient": SDPBackend.EFFICIENT_ATTENTION, "math": SDPBackend.MATH}


def timed(fn, iters: int = 20, warmup: int = 5) -> float:
    """Median CUDA-event milliseconds of `fn` (gpu.py's timer)."""
    return bench(fn, Bench("cuda", tiny=False, iters=iters, compile_backend="inductor"), warmup=warmup)


def default_kernel(q, k, v) -> str:
    """The attention kernel torch runs for a plain call (from a profile's CUDA kernel names)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        F.scaled_dot_product_attention(q, k, v)
        torch.cuda.synchronize()
    names = [e.key for e in prof.key_averages() if e.device_type.name == "CUDA"]
    for word in ("cudnn", "flash", "fmha", "efficient", "gemm"):
        found = [n for n in names if word in n.lower()]
        if found:
            return found[0][:80]
    return names[0][:80] if names else "?"


def run_shape(label: str, shape: tuple[int, int, int, int]) -> list[dict]:
    b, h, n, d = shape
    gen = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(shape, device="cuda", dtype=torch.bfloat16, generator=gen) for _ in range(3))
    grad = torch.randn(shape, device="cuda", dtype=torch.bfloat16, generator=gen)
    with sdpa_kernel(SDPBackend.MATH):
        reference = F.scaled_dot_product_attention(q.float(), k.float(), v.float())
    flops = 4 * b * h * n * n * d
    rows = [{"shape": label, "backend": "default", "kernel": default_kernel(q, k, v)}]
    candidates = {name: partial(_with, be) for name, be in BACKENDS.items()}
    try:
        from torch.nn.attention.flex_attention import flex_attention

        candidates["flex (compiled)"] = torch.compile(flex_attention)
    except ImportError:
        pass
    for name, attend in candidates.items():
        row = {"shape": label, "backend": name}
        try:
            out = attend(q, k, v)
            row["error_vs_fp32_math"] = float((out.float() - reference).norm() / reference.norm())
            row["forward_ms"] = timed(partial(attend, q, k, v))
            qg, kg, vg = (t.detach().clone().requires_grad_() for t in (q, k, v))
            row["forward_backward_ms"] = timed(partial(_backward, attend, qg, kg, vg, grad))
            row["forward_tflops"] = flops / row["forward_ms"] / 1e9
            row["forward_backward_tflops"] = 3.5 * flops / row["forward_backward_ms"] / 1e9
        except RuntimeError as err:  # a backend that cannot run this shape says so
            row["error"] = str(err).splitlines()[0][:160]
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps(rows[0]), flush=True)
    return rows


def _backward(attend, q, k, v, grad) -> None:
    attend(q, k, v).backward(grad)


def _with(backend: SDPBackend, q, k, v):
    with sdpa_kernel(backend):
        return F.scaled_dot_product_attention(q, k, v)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
              "cudnn": torch.backends.cudnn.version(), "python": platform.python_version(), "rows": []}
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}), flush=True)
    for label, shape in SHAPES.items():
        report["rows"] += run_shape(label, shape)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
