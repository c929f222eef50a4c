"""FP8 inference's accuracy contract: its logits against bf16's, on a fine-tuned model and on ViT-B.

1. A fine-tuned classifier (e.g. the demo's `finetune-pretrained/model`) over a labelled list
   (e.g. the demo's `data/test.txt`): every video's clips (as `videomae evaluate` takes them:
   `--num-clips` uniform clips, centre crop) through the model in bf16 and after
   `videomae.fp8.quantize_float8`; prints top-1 agreement between the two, each one's accuracy
   and the logits' relative error (||fp8 - bf16|| / ||bf16||, over all clips).
2. `--vitb N`: VideoMAE-B 16x224 with random weights (no trained ViT-B is available offline),
   N random clips, the same comparison of logits (400 classes).

On a GPU of compute capability >= 8.9 the FP8 products run on its FP8 units; on a CPU torch
emulates them (same e4m3 rounding, float32 accumulation): the numbers are the contract's, the
time is not. The GPU computes the GELU before fc2 in its tanh form (`videomae.fp8_gelu`'s
one-pass kernel); `--gelu tanh` makes the CPU run compute that form too, so the contract covers
the numbers the GPU path produces.

    python benchmarks/fp8_accuracy.py --model DEMO/finetune-pretrained/model --list DEMO/data/test.txt
    python benchmarks/fp8_accuracy.py --vitb 8 [--device cuda] [--gelu tanh]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import videomae  # noqa: E402
from videomae import fp8_gelu  # noqa: E402
from videomae.fp8 import quantize_float8, quantize_rows  # noqa: E402


def use_tanh_gelu() -> None:
    """fc2's input on the CPU as the GPU kernel computes it: GELU's tanh form in float32, then
    the row-wise quantisation (the kernel's own test bounds the remaining difference to one e4m3
    step on under 0.5% of values)."""
    fp8_gelu._reference = lambda x: quantize_rows(torch.nn.functional.gelu(x.float(), approximate="tanh"))


def compare(bf16: torch.Tensor, fp8: torch.Tensor) -> dict:
    """bf16 and fp8 logits (N, C) of the same inputs."""
    a, b = bf16.float(), fp8.float()
    return {"clips": a.shape[0], "logits_relative_error": float((b - a).norm() / a.norm()),
            "top1_agreement": float((a.argmax(-1) == b.argmax(-1)).float().mean()),
            "top1_differ": int((a.argmax(-1) != b.argmax(-1)).sum())}


def fine_tuned(args, device: torch.device) -> dict:
    from videomae.data.datasets import read_video_list
    from videomae.pipeline import DEFAULT_SAMPLING_RATE, checkpoint_sampling_rate, load_processor, run_videos

    model = videomae.VideoMAEForVideoClassification.from_pretrained(args.model).to(device, torch.bfloat16).eval()
    processor = load_processor(args.model, model.config)
    records, _ = read_video_list(args.list)
    paths, labels = [r.path for r in records], torch.tensor([int(r.label) for r in records])
    rate = checkpoint_sampling_rate(model.config) or DEFAULT_SAMPLING_RATE

    def logits_of(net: torch.nn.Module) -> torch.Tensor:
        rows = [r.clip_outputs for r in run_videos(paths, lambda x: net(x).logits, processor,
                                                   clip_len=net.config.num_frames, sampling_rate=rate,
                                                   num_clips=args.num_clips, batch_size=32,
                                                   num_workers=args.workers, device=device, dtype="bfloat16")]
        return torch.stack(rows)  # (videos, clips, classes)

    bf16 = logits_of(model)
    fp8 = logits_of(quantize_float8(copy.deepcopy(model)))
    out = compare(bf16.flatten(0, 1), fp8.flatten(0, 1))
    # per video, as `videomae evaluate` scores it: mean of the clips' softmax
    video_bf16, video_fp8 = bf16.float().softmax(-1).mean(1), fp8.float().softmax(-1).mean(1)
    out.update({"videos": len(paths), "video_top1_agreement": float((video_bf16.argmax(-1) == video_fp8.argmax(-1))
                                                                     .float().mean()),
                "video_top1_differ": int((video_bf16.argmax(-1) != video_fp8.argmax(-1)).sum()),
                "accuracy_bf16": float((video_bf16.argmax(-1) == labels).float().mean()),
                "accuracy_fp8": float((video_fp8.argmax(-1) == labels).float().mean()),
                "model": args.model, "list": args.list, "num_clips": args.num_clips})
    return out


def vitb(args, device: torch.device) -> dict:
    torch.manual_seed(0)
    model = videomae.VideoMAEForVideoClassification(videomae.VideoMAEConfig(num_labels=400)).to(device, torch.bfloat16)
    model.eval()
    x = torch.randn(args.vitb, 16, 3, 224, 224, device=device, dtype=torch.bfloat16)
    with torch.inference_mode():
        bf16 = torch.cat([model(x[i:i + 4]).logits for i in range(0, len(x), 4)])
        quantize_float8(model)
        fp8 = torch.cat([model(x[i:i + 4]).logits for i in range(0, len(x), 4)])
    return {"model": "VideoMAE-B 16x224, random weights, 400 classes", **compare(bf16, fp8)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a fine-tuned classifier folder")
    parser.add_argument("--list", help="its labelled `path label` list")
    parser.add_argument("--num-clips", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--vitb", type=int, default=0, metavar="N", help="also N random clips through a random ViT-B")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--gelu", choices=("exact", "tanh"), default="exact",
                        help="where the torch ops compute fc2's GELU (CPU): exact, or the GPU kernel's tanh form")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.gelu == "tanh":
        use_tanh_gelu()
    report = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
              "torch": torch.__version__, "python": platform.python_version(), "gelu": args.gelu}
    if args.model:
        report["fine_tuned"] = fine_tuned(args, device)
        print(json.dumps(report["fine_tuned"]), flush=True)
    if args.vitb:
        report["vitb"] = vitb(args, device)
        print(json.dumps(report["vitb"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
