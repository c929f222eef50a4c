"""FP8 training against bf16: step time and the loss after the same steps (ViT-B, synthetic clips).

Pretraining (batch 64, 90% tube masks from the CPU) and fine-tuning (batch 16, 400 classes),
each `--steps` AdamW steps (lr 1.5e-4 after a 10% warm-up, bf16 autocast, `forward_indexed` /
the classifier compiled): three bf16 runs with seeds 0, 1, 2 and one FP8 run (torchao
float8, row-wise scales; `videomae.fp8.convert_for_training`) with seed 0. The clips are
smooth random textures moving by a random shift each frame, drawn on the GPU from the seed
(a learnable signal: the next frames follow from the first); the fine-tuning label is the
direction class of the motion. Prints the median step time after the first 10 steps, the
mean loss of the last 20 steps of each run, and whether the FP8 run's lies within the bf16
runs' range. The speed-up is against the fastest bf16 run: the process's first run can be
slower for dozens of steps (108 against 43 ms a step at batch 64 over 80 steps, seen on an H200).

    python benchmarks/fp8_training.py [--steps 300] [--recipe tensorwise] [--layers mlp] [--json OUT.json]
    python benchmarks/fp8_training.py --device cpu --tiny --steps 4     # smoke test
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
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import videomae  # noqa: E402
from videomae.data.collate import MaskGenerator  # noqa: E402
from videomae.fp8 import convert_for_training  # noqa: E402

TINY = dict(image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=64, num_hidden_layers=2,
            num_attention_heads=2, intermediate_size=128, decoder_hidden_size=32, decoder_num_hidden_layers=1,
            decoder_num_attention_heads=2, decoder_intermediate_size=64)
DIRECTIONS = torch.tensor([[0, 1], [0, -1], [1, 0], [-1, 0], [1, 1], [-1, -1], [1, -1], [-1, 1]])


def clips(batch: int, cfg: videomae.VideoMAEConfig, gen: torch.Generator, device: torch.device):
    """(B, T, 3, S, S) moving smooth textures, normalised, and their motion class (0..7)."""
    size, frames = cfg.image_size, cfg.num_frames
    base = torch.randn(batch, 3, size // 4, size // 4, generator=gen, device=device)
    texture = F.interpolate(base, size=(2 * size, 2 * size), mode="bicubic", align_corners=False)
    labels = torch.randint(0, len(DIRECTIONS), (batch,), generator=gen, device=device)
    step = DIRECTIONS.to(device)[labels] * 2  # pixels per frame
    out = []
    for t in range(frames):
        shift = step * t
        rows = (torch.arange(size, device=device)[None, :] + size // 2 + shift[:, :1]) % (2 * size)
        cols = (torch.arange(size, device=device)[None, :] + size // 2 + shift[:, 1:]) % (2 * size)
        frame = texture[torch.arange(batch, device=device)[:, None, None, None], torch.arange(3, device=device)[None,
                        :, None, None], rows[:, None, :, None], cols[:, None, None, :]]
        out.append(frame)
    return torch.stack(out, dim=1), labels  # (B, T, 3, S, S)


def run(kind: str, seed: int, fp8: bool, args, device: torch.device) -> dict:
    torch.manual_seed(seed)
    fields = dict(TINY) if args.tiny else {}
    if kind == "pretrain":
        cfg = videomae.VideoMAEConfig(**fields, use_mean_pooling=False)
        model = videomae.VideoMAEForPreTraining(cfg)
        batch = 2 if args.tiny else 64
    else:
        cfg = videomae.VideoMAEConfig(**fields, num_labels=len(DIRECTIONS))
        model = videomae.VideoMAEForVideoClassification(cfg)
        batch = 2 if args.tiny else 16
    model.to(device).train()
    if fp8:
        select = None if args.layers == "all" else (lambda name, m: isinstance(m, torch.nn.Linear)
                                                    and name.endswith(("mlp.fc1", "mlp.fc2")))
        convert_for_training(model, recipe=args.recipe, select=select)
    if kind == "pretrain":
        model.forward_indexed = torch.compile(type(model).forward_indexed.__get__(model), backend=args.backend)
        net = model
    else:
        net = torch.compile(model, backend=args.backend)
    opt = torch.optim.AdamW(model.parameters(), lr=1.5e-4, betas=(0.9, 0.95), weight_decay=0.05,
                            fused=device.type == "cuda" or None)
    warmup = max(1, args.steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
    gen = torch.Generator(device=device).manual_seed(seed)
    masks, cpu_gen = MaskGenerator(cfg.grid_size, 0.9, "tube"), torch.Generator().manual_seed(seed)
    losses, times = [], []
    for _ in range(args.steps):
        x, labels = clips(batch, cfg, gen, device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(device.type, torch.bfloat16):
            out = net(x, masks(batch, cpu_gen)) if kind == "pretrain" else net(x, labels=labels)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()
        losses.append(out.loss.detach().item())  # syncs: the step time includes the whole step
        times.append(time.perf_counter() - start)
    tail = losses[-min(20, len(losses)):]
    row = {"kind": kind, "seed": seed, "fp8": fp8, "batch": batch, "steps": args.steps,
           "step_ms": statistics.median(times[min(10, len(times) - 1):]) * 1e3,
           "final_loss": statistics.fmean(tail), "first_loss": losses[0]}
    row["clips_per_s"] = batch / (row["step_ms"] / 1e3)
    print(json.dumps(row), flush=True)
    return row


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--backend", default="inductor", help="torch.compile backend ('eager' for a smoke test)")
    parser.add_argument("--only", choices=("pretrain", "finetune"), action="append")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--recipe", default="rowwise", choices=("rowwise", "tensorwise", "rowwise_with_gw_hp"),
                        help="torchao's scaling recipe for the FP8 run")
    parser.add_argument("--layers", default="all", choices=("all", "mlp"),
                        help="FP8 in every block's linear layers, or only the MLP's (the widest products)")
    parser.add_argument("--seeds", type=int, default=3, help="bf16 runs (seeds 0..N-1) to compare the FP8 run with")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1 (a bf16 run to compare with), got {args.seeds}")
    device = torch.device(args.device)
    report = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
              "torch": torch.__version__, "python": platform.python_version(), "rows": [], "summary": []}
    for kind in args.only or ("pretrain", "finetune"):
        rows = [run(kind, seed, False, args, device) for seed in range(args.seeds)] + [run(kind, 0, True, args, device)]
        report["rows"] += rows
        bf16, fp8 = rows[:-1], rows[-1]
        lo, hi = min(r["final_loss"] for r in bf16), max(r["final_loss"] for r in bf16)
        summary = {"kind": kind, "recipe": args.recipe, "layers": args.layers,
                   "speedup": min(r["step_ms"] for r in bf16) / fp8["step_ms"],
                   "bf16_final_loss_range": [lo, hi], "fp8_final_loss": fp8["final_loss"],
                   "fp8_within_bf16_range": lo <= fp8["final_loss"] <= hi}
        report["summary"].append(summary)
        print(json.dumps(summary), flush=True)
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
