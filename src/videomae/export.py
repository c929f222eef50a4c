"""Models exported to one file: ONNX (run by onnxruntime) or a torch.export program (.pt2).

    export_model("runs/finetune/model", "onnx", "model.onnx")  # (B, T, C, H, W) -> logits (B, num_labels)
    model = load_exported("model.onnx")                          # what the pipeline needs of a model
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

import json
import os
from pathlib import Path

import torch
from torch import nn

from .config import VideoMAEConfig
from .outputs import BaseModelOutput, ImageClassifierOutput
from .processing import VideoMAEImageProcessor

EXPORT_FORMATS = {"onnx": ".onnx", "torch-export": ".pt2"}  # format -> file suffix
EXPORTED_SUFFIXES = tuple(EXPORT_FORMATS.values())
CONFIG_KEY = "videomae.config"  # metadata: config.json's text
PROCESSOR_KEY = "videomae.preprocessor"  # metadata: preprocessor_config.json's text
OUTPUT_KEY = "videomae.output"  # metadata: "logits" (a classifier) or "last_hidden_state" (an encoder)


def is_exported(model: str | os.PathLike) -> bool:
    return Path(model).suffix.lower() in EXPORTED_SUFFIXES


class _Tensors(nn.Module):
    """A model's one output as a plain tensor: what exporters trace."""

    def __init__(self, model: nn.Module, output: str) -> None:
        super().__init__()
        self.model = model
        self.output = output

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return getattr(self.model(pixel_values, return_dict=True), self.output)


def use_explicit_attention(model: nn.Module) -> nn.Module:
    """Switch every attention layer to the explicit softmax, as `attn_implementation="eager"` does
    at construction; returns the model."""
    from .modeling import Attention

    model.config.attn_implementation = "eager"
    for module in model.modules():
        if isinstance(module, Attention):
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


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The config, preprocessor and output name stored in an exported file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix.lower() == ".onnx":
        import onnx

        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    else:
        extra = {CONFIG_KEY: "", PROCESSOR_KEY: "", OUTPUT_KEY: ""}
        torch.export.load(path, extra_files=extra)
        props = {k: v for k, v in extra.items() if v}
    missing = [k for k in (CONFIG_KEY, PROCESSOR_KEY, OUTPUT_KEY) if k not in props]
    if missing:
        raise ValueError(f"{path}: not written by `videomae export` (no {', '.join(missing)} metadata)")
    return props


class ExportedModel:
    """An exported file that looks enough like a model to `videomae.pipeline`: `config`,
    `processor`, `device`, `to(device)`, and a call on pixel_values (B, T, C, H, W) returning
    `.logits` (a classifier) or `.last_hidden_state` (an encoder). Runs in float32."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        props = read_metadata(self.path)
        self.config = VideoMAEConfig.from_dict(json.loads(props[CONFIG_KEY]))
        self.processor = VideoMAEImageProcessor.from_dict(json.loads(props[PROCESSOR_KEY]))
        self.output = props[OUTPUT_KEY]
        self.device = torch.device("cpu")
        self._session = None
        self._module = None
        if self.path.suffix.lower() == ".onnx":
            self._session = self._onnx_session("cpu")
        else:
            self._module = torch.export.load(self.path).module()

    def _onnx_session(self, device: str):  # noqa: ANN202 - onnxruntime.InferenceSession
        try:
            import onnxruntime as ort
        except ImportError:
            raise ValueError(f"{self.path}: running an ONNX model needs the export extra: "
                             f"pip install 'videomae[export]'") from None
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ValueError(f"{self.path}: onnxruntime here has no CUDA provider; use --device cpu "
                                 f"(or install onnxruntime-gpu)")
            providers.insert(0, "CUDAExecutionProvider")
        return ort.InferenceSession(str(self.path), providers=providers)

    def to(self, device: str | torch.device) -> ExportedModel:
        """ONNX: choose onnxruntime's provider (inputs stay on the CPU, where onnxruntime takes them);
        .pt2: move the program's module."""
        device = torch.device(device)
        if self._session is not None:
            self._session = self._onnx_session(device.type)
        else:
            self._module = self._module.to(device)
            self.device = device
        return self

    def eval(self) -> ExportedModel:
        return self

    def compile_blocks(self) -> None:
        raise ValueError(f"{self.path}: an exported model runs as exported; --compile does not apply")

    def __call__(self, pixel_values: torch.Tensor) -> ImageClassifierOutput | BaseModelOutput:
        pixels = pixel_values.float()
        if self._session is not None:
            result = torch.from_numpy(self._session.run(None, {"pixel_values": pixels.cpu().numpy()})[0])
        else:
            result = self._module(pixels.to(self.device))
        if self.output == "logits":
            return ImageClassifierOutput(logits=result)
        return BaseModelOutput(last_hidden_state=result)


def load_exported(path: str | os.PathLike) -> ExportedModel:
    return ExportedModel(path)


__all__ = ["export_model", "load_exported", "ExportedModel", "use_explicit_attention", "read_metadata",
           "is_exported", "EXPORT_FORMATS", "EXPORTED_SUFFIXES"]
