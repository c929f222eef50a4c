"""Models exported to one file: ONNX (run by onnxruntime) or a torch.export program (.pt2).

    export_model("runs/finetune/model", "onnx", "model.onnx")  # (B, T, C, H, W) -> logits (B, num_labels)
    model = videomae.exported.load_exported("model.onnx")       # what the pipeline needs of a model
    classify_videos(paths, model, model.processor)

The batch dimension is dynamic; frames and image size are those of the checkpoint (the
position embeddings are a fixed table of that many tokens). Attention is exported as the
explicit softmax(q k^T / sqrt(d)) v (`attn_implementation="eager"`), so the graph holds plain
matrix products and a softmax, not a fused attention kernel that an exporter or runtime might
translate wrongly. The file carries the model's config.json and preprocessor_config.json (ONNX
metadata, or extra files in the .pt2 archive), so it is all `videomae classify` needs.

Needs the export extra for ONNX: pip install 'videomae[export]' (onnx, onnxruntime, and onnxscript
for torch's exporter).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from .exported import CONFIG_KEY, EXPORT_FORMATS, OUTPUT_KEY, PROCESSOR_KEY


class _Tensors(nn.Module):
    """A model's one output as a plain tensor: what exporters trace."""

    def __init__(self, model: nn.Module, output: str) -> None:
        super().__init__()
        self.model = model
        self.output = output

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return getattr(self.model(pixel_values, return_dict=True), self.output)


def use_explicit_attention(model: nn.Module) -> nn.Module:
    """Switch every attention layer to the explicit softmax (and every MLP to the GELU as its own
    pass), as `attn_implementation="eager"` does at construction; returns the model."""
    from .modeling import Attention, Mlp

    model.config.attn_implementation = "eager"
    for module in model.modules():
        if isinstance(module, (Attention, Mlp)):
            module.explicit = True
    return model


def export_model(model: str | os.PathLike, format: str, out: str | os.PathLike, *, offline: bool = False,
                 batch_size: int = 2) -> Path:
    """Export a classifier (output: logits (B, num_labels)) or, for a checkpoint without a head, the
    encoder (output: last_hidden_state (B, N, D)), with a dynamic batch dimension. `batch_size` is
    the example batch traced (the exported file takes any batch). Returns the file written."""
    from .modeling import VideoMAEModel
    from .pipeline import load_classifier, load_processor, model_architectures, quiet_loading

    if format not in EXPORT_FORMATS:
        raise ValueError(f"--format {format!r}: use one of {', '.join(EXPORT_FORMATS)}")
    out = Path(out)
    if out.suffix.lower() != EXPORT_FORMATS[format]:
        raise ValueError(f"--out {out}: a {format} file is named *{EXPORT_FORMATS[format]}")
    if "VideoMAEForVideoClassification" in model_architectures(str(model), offline):
        net, output = load_classifier(str(model), offline), "logits"
    else:
        with quiet_loading():
            net, output = VideoMAEModel.from_pretrained(model, local_files_only=offline), "last_hidden_state"
    processor = load_processor(str(model), net.config, offline)
    net = use_explicit_attention(net.float().eval().cpu())
    config = net.config
    h, w = config.image_hw
    example = torch.zeros(batch_size, config.num_frames, config.num_channels, h, w)
    wrapped = _Tensors(net, output).eval()
    metadata = {CONFIG_KEY: config.to_json_string(), PROCESSOR_KEY: processor.to_json_string(), OUTPUT_KEY: output}
    dynamic = {"pixel_values": {0: torch.export.Dim("batch", min=1, max=4096)}}
    out.parent.mkdir(parents=True, exist_ok=True)
    if format == "onnx":
        _export_onnx(wrapped, example, dynamic, output, metadata, out)
    else:
        with torch.no_grad():
            program = torch.export.export(wrapped, (example,), dynamic_shapes=dynamic)
        torch.export.save(program, out, extra_files=metadata)
    return out


def _export_onnx(wrapped: nn.Module, example: torch.Tensor, dynamic: dict, output: str, metadata: dict[str, str],
                 out: Path) -> None:
    """torch's dynamo-based ONNX exporter (the TorchScript one, dynamo=False, failed on this model
    under torch 2.13), then the metadata written into the file."""
    try:
        import onnx
    except ImportError:
        raise ValueError("exporting to ONNX needs the export extra: pip install 'videomae[export]'") from None
    with torch.no_grad():
        program = torch.onnx.export(wrapped, (example,), input_names=["pixel_values"], output_names=[output],
                                    dynamic_shapes=dynamic, dynamo=True, optimize=True, verbose=False)
    program.save(str(out))
    proto = onnx.load(str(out))
    del proto.metadata_props[:]
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(out))




__all__ = ["export_model", "use_explicit_attention"]
