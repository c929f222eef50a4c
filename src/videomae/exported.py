"""Running a file that `videomae export` wrote: `ExportedModel`, which `videomae.pipeline` runs as
it runs a model (`load_classifier` and `load_processor` take .onnx and .pt2 paths).

The file carries the model's config.json and preprocessor_config.json (ONNX metadata properties,
or extra files of the .pt2 archive), so it needs nothing beside it. ONNX runs through onnxruntime
(the export extra: pip install 'videomae[export]').
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

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


__all__ = ["ExportedModel", "load_exported", "read_metadata", "is_exported", "EXPORT_FORMATS", "EXPORTED_SUFFIXES",
           "CONFIG_KEY", "PROCESSOR_KEY", "OUTPUT_KEY"]
