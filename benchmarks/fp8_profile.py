"""Where FP8 inference's time goes, against bf16: ViT-B 16x224 classification at batch 64, both
compiled (default mode), the top CUDA kernels of two forwards each (torch profiler), and a bare
product of ViT-B's shapes in each precision (the matrix-unit limit the layers could reach), GELU
and the quantisation of fc2's input (eager, compiled, one-pass kernel: memory-bound, GB/s), and
fc1 with its GELU in the product's epilogue (cuBLASLt; the tanh form of GELU on the GPU) against
the separate GELU pass (11% of the bf16 forward; the model now fuses it in inference).

    python benchmarks/fp8_profile.py [--tiny --device cpu]   # the CPU run only checks the script
"""

from __future__ import annotations

import argparse
import copy
import sys
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import videomae  # noqa: E402
from gpu import TINY, Bench, bench, inference_case, profile_fn  # noqa: E402
from videomae.fp8 import quantize_float8, quantize_rows  # noqa: E402
from videomae.fp8_gelu import gelu_quantize_rows, kernel_available  # noqa: E402


def products(b: Bench, tokens: int) -> None:
    """ViT-B's four linear shapes (qkv, proj, fc1, fc2) at `tokens` rows: bf16 against FP8
    row-wise (`torch._scaled_mm`, bias in the epilogue as Float8Linear runs it), TFLOP/s each."""
    for k, n in ((768, 2304), (768, 768), (768, 3072), (3072, 768)):
        x = torch.randn(tokens, k, device=b.device, dtype=torch.bfloat16)
        w = torch.randn(n, k, device=b.device, dtype=torch.bfloat16)
        bias = torch.randn(n, device=b.device, dtype=torch.bfloat16)
        qx, sx = quantize_rows(x)
        qw, sw = quantize_rows(w)
        flops = 2 * tokens * k * n
        t16 = bench(partial(torch.nn.functional.linear, x, w, bias), b)
        t8 = bench(partial(torch._scaled_mm, qx, qw.t(), scale_a=sx, scale_b=sw.reshape(1, -1), bias=bias,
                           out_dtype=torch.bfloat16), b)
        t8q = bench(partial(quantize_rows, x), b)
        print(f"  {tokens}x{k} @ {k}x{n}: bf16 {t16:.3f} ms ({flops / t16 / 1e9:.0f} TFLOP/s), fp8 {t8:.3f} ms "
              f"({flops / t8 / 1e9:.0f} TFLOP/s), quantising the input (eager) {t8q:.3f} ms", flush=True)
        if k == 3072:  # fc2's input: GELU then its row-wise quantisation, three ways
            gelu_then_quantize(b, x)
        if n == 3072:  # fc1: GELU as a separate pass (training, "eager") or in the product's epilogue (inference)
            separate = bench(partial(_linear_gelu, x, w, bias), b)
            fused = bench(partial(torch._addmm_activation, bias, x, w.t(), use_gelu=True), b)
            exact = _linear_gelu(x.float(), w.float(), bias.float())
            epilogue = torch._addmm_activation(bias, x, w.t(), use_gelu=True).float()
            error = float((epilogue - exact).norm() / exact.norm())
            print(f"  fc1 + GELU, bf16: product then GELU {separate:.3f} ms, GELU in the product's epilogue "
                  f"(torch._addmm_activation) {fused:.3f} ms, its error against float32 erf GELU {error:.1e}",
                  flush=True)


def gelu_then_quantize(b: Bench, h: torch.Tensor) -> None:
    """GELU and the row-wise e4m3 quantisation of fc1's output (tokens x 3,072): eager torch ops,
    the same compiled (inductor's looped row reduction), and `videomae.fp8_gelu`'s one-pass
    kernel; GB/s counts one read of h and one write of the bytes and scales."""
    def two_steps(x: torch.Tensor):
        return quantize_rows(torch.nn.functional.gelu(x))

    moved = h.numel() * (h.element_size() + 1) + h.shape[0] * 4
    compiled = torch.compile(two_steps)
    for label, fn in (("eager", two_steps), ("compiled", compiled), ("one-pass kernel", gelu_quantize_rows)):
        if label == "one-pass kernel" and not kernel_available(h):
            continue
        t = bench(partial(fn, h), b)
        print(f"  GELU + quantise {tuple(h.shape)}, {label}: {t:.3f} ms ({moved / t / 1e6:.0f} GB/s)", flush=True)


def _linear_gelu(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.gelu(torch.nn.functional.linear(x, w, bias))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args(argv)
    b = Bench(args.device, args.tiny, 2 if args.tiny else 10, "inductor")
    batch = 2 if args.tiny else 64
    fields = dict(TINY) if args.tiny else {}
    model = videomae.VideoMAEForVideoClassification(videomae.VideoMAEConfig(**fields, num_labels=400))
    model = model.to(b.device, torch.bfloat16).eval()
    fp8 = quantize_float8(copy.deepcopy(model))
    tokens = batch * videomae.VideoMAEConfig(**fields).num_patches if not args.tiny else 64
    print(f"products at {tokens} tokens:", flush=True)
    products(b, tokens)
    if b.cuda:
        profile_fn({"bf16 compiled": inference_case(model, batch, False, b, "default"),
                    "fp8 compiled": inference_case(fp8, batch, False, b, "default")}, f"inference b{batch}")


if __name__ == "__main__":
    main()
