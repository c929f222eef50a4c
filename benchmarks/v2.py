"""VideoMAE V2 on the GPU: the dual-masking pretraining step against V1's, and ViT-g's largest batch.

Two measurements (random weights and random clips: step time does not depend on the values):

1. ViT-B 16x224 pretraining step at batch 64 (90% tube masks drawn on the CPU each step, as the
   data loader does; bf16 autocast; fused AdamW), V1 (the decoder reconstructs every hidden
   token) against V2 dual masking (`decoder_mask_ratio` 0.5: the decoder gets mask tokens at
   half the positions only), eager and with `forward_indexed` compiled (as `videomae pretrain
   --compile` does).
2. ViT-g/14 (the `giant` preset, 16x224) V2 pretraining with gradient checkpointing: batches
   doubled from 16 until the step runs out of memory; clips/s at each batch that fits.

    python benchmarks/v2.py [--json OUT.json] [--skip-giant] [--no-compile]
    python benchmarks/v2.py --device cpu --tiny          # a smoke test, seconds; numbers mean nothing
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import videomae  # noqa: E402
from videomae.data.collate import MaskGenerator  # noqa: E402

TINY = dict(image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=2,
            num_attention_heads=2, intermediate_size=64, decoder_hidden_size=32, decoder_num_hidden_layers=1,
            decoder_num_attention_heads=2, decoder_intermediate_size=64)


def step_fn(model: videomae.VideoMAEForPreTraining, batch: int, device: torch.device, decoder_mask_ratio: float):
    """One optimizer step on a fixed random clip batch; fresh CPU masks every call."""
    cfg = model.config
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05,
                            fused=device.type == "cuda" or None)
    x = torch.randn(batch, cfg.num_frames, 3, cfg.image_size, cfg.image_size, device=device)
    masks = MaskGenerator(cfg.grid_size, 0.9, "tube", decoder_mask_ratio=decoder_mask_ratio)
    gen = torch.Generator().manual_seed(0)

    def run() -> None:
        mask, decoder_mask = masks(batch, gen), masks.decoder_mask(batch, gen)
        with torch.autocast(device.type, torch.bfloat16):
            loss = model(x, mask, decoder_masked_pos=decoder_mask).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return run


def timed(fn, device: torch.device, warmup: int, iters: int) -> float:
    """Median seconds per call (synchronised each call: one step is long enough)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def dual_masking(args, device: torch.device, rows: list) -> None:
    fields = dict(TINY) if args.tiny else {}
    batch = 2 if args.tiny else 64
    modes = [None] if args.no_compile else [None, "default"]
    for mode in modes:
        for ratio in (0.0, 0.5):
            torch.manual_seed(0)
            cfg = videomae.VideoMAEConfig(**fields, use_mean_pooling=False)
            model = videomae.VideoMAEForPreTraining(cfg).to(device).train()
            if mode:
                torch.compiler.reset()
                model.forward_indexed = torch.compile(type(model).forward_indexed.__get__(model), mode=mode)
            sec = timed(step_fn(model, batch, device, ratio), device, 2 if args.tiny else 5, 2 if args.tiny else 20)
            row = {"case": f"ViT-B pretrain b{batch} {'V2 decoder_mask_ratio 0.5' if ratio else 'V1'}"
                           f"{' compiled' if mode else ' eager'}", "batch": batch, "ms": sec * 1e3,
                   "clips_per_s": batch / sec,
                   "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None}
            rows.append(row)
            print(json.dumps(row), flush=True)
            del model
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()


def giant(args, device: torch.device, rows: list) -> None:
    """ViT-g V2 pretraining with gradient checkpointing: the largest power-of-two batch that fits."""
    fields = dict(TINY) if args.tiny else {}
    cfg = (videomae.VideoMAEConfig(**fields, use_mean_pooling=False) if args.tiny
           else videomae.VideoMAEConfig.from_preset("giant", use_mean_pooling=False))
    torch.manual_seed(0)
    model = videomae.VideoMAEForPreTraining(cfg).to(device).train()
    model.gradient_checkpointing_enable()
    params = sum(p.numel() for p in model.parameters())
    print(f"ViT-g: {params / 1e9:.2f} B parameters, grid {cfg.grid_size}", flush=True)
    batch, best = (1 if args.tiny else 16), None
    while batch <= (4 if args.tiny else 1024):
        try:
            sec = timed(step_fn(model, batch, device, 0.5), device, 1, 2 if args.tiny else 3)
        except torch.OutOfMemoryError:
            print(f"ViT-g batch {batch}: out of memory", flush=True)
            break
        finally:
            model.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()
        row = {"case": f"ViT-g pretrain b{batch} V2 decoder_mask_ratio 0.5, gradient checkpointing, eager",
               "batch": batch, "ms": sec * 1e3, "clips_per_s": batch / sec, "params": params,
               "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None}
        rows.append(row)
        best = row
        print(json.dumps(row), flush=True)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        batch *= 2
    if best:
        print(f"ViT-g largest batch that fits (powers of two): {best['batch']}, {best['clips_per_s']:.1f} clips/s",
              flush=True)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny models (a smoke test)")
    parser.add_argument("--skip-giant", action="store_true")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    report = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
              "torch": torch.__version__, "python": platform.python_version(), "rows": []}
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}), flush=True)
    dual_masking(args, device, report["rows"])
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    if not args.skip_giant:
        giant(args, device, report["rows"])
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
