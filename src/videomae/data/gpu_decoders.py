"""The GPU decoders by name, checked before a run starts: 'nvdec' (PyNvVideoCodec, `videomae[gpu]`)
and 'dali' (NVIDIA DALI, `videomae[dali]`). Both return CUDA frames from threads of the calling
process, with `read_video`'s contract."""

from __future__ import annotations

import torch

__all__ = ["GPU_DECODERS", "gpu_decoder"]

GPU_DECODERS = ("nvdec", "dali")


def gpu_decoder(name: str, device: str | torch.device):  # noqa: ANN201 (NvdecDecoder | DaliDecoder)
    """The decoder called `name` for frames on `device`; a clear error when the device is not a
    GPU or the decoder's package is missing."""
    device = torch.device(device)
    if name not in GPU_DECODERS:
        raise ValueError(f"decoder must be one of {('pyav', *GPU_DECODERS)}, got {name!r}")
    if device.type != "cuda":
        raise ValueError(f"decoder {name!r} decodes on a CUDA GPU; this run is on {device}")
    if name == "nvdec":
        from .nvdec import NvdecDecoder, nvdec_available

        if not nvdec_available():
            raise ValueError("decoder 'nvdec' needs PyNvVideoCodec: pip install 'videomae[gpu]'")
        return NvdecDecoder(device)
    from .dali import DaliDecoder, dali_available

    if not dali_available():
        raise ValueError("decoder 'dali' needs NVIDIA DALI: pip install 'videomae[dali]'")
    return DaliDecoder(device)

