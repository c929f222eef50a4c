"""Which q/k/v layout makes SDPA fastest on this GPU (ViT-B attention, 1568 tokens)?

Times one attention sub-layer (projection, SDPA, output projection) in five layouts, forward
in bf16 (inference) and forward + backward under bf16 autocast (training):
  separate   three Linear layers, view + transpose (transformers' layout)
  fused      one Linear to 3*D, reshape + permute, q/k/v are strided views
  fused_cont one Linear, then one copy to a contiguous (3, B, heads, N, hd) tensor
  bmm        one batched GEMM with weights (3, D, D): q, k, v each come out contiguous
  fused_flash the fused layout with SDPA forced to the flash backend

    python benchmarks/attention_layouts.py
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from gpu import bench  # the same CUDA-event timer (this folder is on sys.path when run as a script)

B, N, D, H = 16, 1568, 768, 12
HD = D // H


def attention(layout: str, x, w, bias, proj_w, proj_b):
    b, n, d = x.shape
    if layout == "separate":
        q, k, v = (F.linear(x, w[i * d:(i + 1) * d], bias[i * d:(i + 1) * d]).view(b, n, H, HD).transpose(1, 2)
                   for i in range(3))
    elif layout == "bmm":
        out = torch.baddbmm(bias.view(3, 1, d), x.reshape(1, b * n, d).expand(3, -1, -1),
                            w.view(3, d, d).transpose(1, 2))  # (3, B*N, D)
        q, k, v = (t.view(b, n, H, HD).transpose(1, 2) for t in out.unbind(0))
    else:
        qkv = F.linear(x, w, bias).reshape(b, n, 3, H, HD).permute(2, 0, 3, 1, 4)
        if layout == "fused_cont":
            qkv = qkv.contiguous()
        q, k, v = qkv.unbind(0)
    if layout == "fused_flash":
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            o = F.scaled_dot_product_attention(q, k, v)
    else:
        o = F.scaled_dot_product_attention(q, k, v)
    return F.linear(o.transpose(1, 2).reshape(b, n, d), proj_w, proj_b)


def main() -> None:
    torch.manual_seed(0)
    print(f"{torch.cuda.get_device_name()} torch {torch.__version__}; B={B} N={N} D={D} heads={H}")
    params = [torch.randn(3 * D, D, device="cuda") * 0.02, torch.randn(3 * D, device="cuda") * 0.02,
              torch.randn(D, D, device="cuda") * 0.02, torch.randn(D, device="cuda") * 0.02]
    x = torch.randn(B, N, D, device="cuda")
    ref = None
    for layout in ["separate", "fused", "fused_cont", "bmm", "fused_flash"]:
        xb, pb = x.bfloat16(), [p.bfloat16() for p in params]
        with torch.inference_mode():
            out = attention(layout, xb, *pb)
            ref = out if ref is None else ref
            err = float((out.float() - ref.float()).norm() / ref.float().norm())
            infer = bench(lambda: attention(layout, xb, *pb))  # noqa: B023
        leaf = [p.clone().requires_grad_() for p in params]
        xg = x.clone().requires_grad_()

        def train():
            with torch.autocast("cuda", torch.bfloat16):
                y = attention(layout, xg, *leaf)  # noqa: B023
            y.float().square().mean().backward()
        step = bench(train)
        print(f"{layout:<12} inference {infer:7.3f} ms   fwd+bwd {step:7.3f} ms   rel diff {err:.1e}", flush=True)


if __name__ == "__main__":
    main()
