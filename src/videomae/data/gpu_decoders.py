"""The GPU decoders by name, checked before a run starts: 'nvdec' (PyNvVideoCodec, `videomae[gpu]`),
which returns CUDA frames from threads of the calling process, with `read_video`'s contract.
NVIDIA DALI was measured for this place and left out (benchmarks/RESULTS.md, "GPU decoders")."""

from __future__ import annotations

import torch

__all__ = ["GPU_DECODERS", "gpu_decoder"]

GPU_DECODERS = ("nvdec",)


def gpu_decoder(name: str, device: str | torch.device):  # noqa: ANN201 (NvdecDecoder)
    """The decoder called `name` for frames on `device`; a clear error when the device is not a
    GPU or the decoder's package is missing."""
    device = torch.device(device)
    if name not in GPU_DECODERS:
        raise ValueError(f"decoder must be one of {('pyav', *GPU_DECODERS)}, got {name!r}")
    if device.type != "cuda":
        raise ValueError(f"decoder {name!r} decodes on a CUDA GPU; this run is on {device}")
    from .nvdec import NvdecDecoder, nvdec_available

    if not nvdec_available():
        raise ValueError("decoder 'nvdec' needs PyNvVideoCodec: pip install 'videomae[gpu]'")
    return NvdecDecoder(device)
