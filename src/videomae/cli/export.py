"""`export`: a model to one file, ONNX or a torch.export program, with a dynamic batch dimension.

A classifier is exported as pixel_values (B, T, C, H, W) -> logits (B, num_labels); a checkpoint
without a head as its encoder, -> last_hidden_state (B, N, D). Frames and image size are the
checkpoint's. Attention is the explicit softmax, not a fused kernel. `videomae classify --model
model.onnx` (or .pt2) runs the file. ONNX needs the export extra: pip install 'videomae[export]'.
"""

from __future__ import annotations

import sys

from ..export import EXPORT_FORMATS, export_model


def add_arguments(parser) -> None:  # noqa: ANN001
    parser.add_argument("model", metavar="MODEL", help="model folder (config.json + weights), hub repo id, or "
                                                       "original .pth checkpoint")
    parser.add_argument("--format", required=True, choices=tuple(EXPORT_FORMATS),
                        help="onnx (FILE.onnx, run by onnxruntime) or torch-export (FILE.pt2, torch.export.load)")
    parser.add_argument("--out", required=True, metavar="FILE", help="the file to write (.onnx or .pt2)")
    parser.add_argument("--offline", action="store_true",
                        help="never reach the Hugging Face hub; use the local cache only")


def run(args) -> int:  # noqa: ANN001
    out = export_model(args.model, args.format, args.out, offline=args.offline)
    print(f"{args.model} -> {out} ({args.format}, dynamic batch)", file=sys.stderr)
    return 0


__all__ = ["add_arguments", "run"]
