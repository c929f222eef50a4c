"""Decoding on the GPU (NVDEC) through PyNvVideoCodec, an optional extra (`videomae[gpu]`).

Why PyNvVideoCodec: it is the one registry package that reaches NVDEC with no system FFmpeg
(its wheel carries its own demuxer), its frames come out as CUDA tensors through DLPack, and it
converts to RGB on the GPU. NVIDIA DALI's video decoder, measured against it on an H200 at the
trainer's frame indices, decoded 11-16 clips/s to this one's 54-89 (`benchmarks/dali_probe.py`);
torchcodec's CUDA path needs FFmpeg libraries installed on the system. Measured on an H200
(benchmarks/RESULTS.md): PyNvVideoCodec's colours are within 2 levels of PyAV's; creating a
decoder costs more than a clip's decoding, so each thread keeps one and points it at the next
file (`reconfigure_decoder`).

Frame i is the i-th frame of the stream as PyNvVideoCodec counts them, which is PyAV's
presentation-order index on constant-frame-rate files (the tests check the frames agree). The
display rotation of phone videos is not applied here: rotate such files once with
`videomae prep`, which writes them upright.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..transforms import resize
from ..video import VideoDecodeError, stored_size

__all__ = ["NvdecDecoder", "nvdec_available", "frames_to_decode", "resize_short_side"]


def nvdec_available() -> bool:
    """Whether PyNvVideoCodec imports and a CUDA device is there."""
    if not torch.cuda.is_available():
        return False
    try:
        import PyNvVideoCodec  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


class NvdecDecoder:
    """`decoder(path, indices_or_pick, resize=None)` -> uint8 (len(indices), H, W, 3) on the GPU:
    the same contract as `videomae.video.read_video`, decoded by NVDEC.

    Thread-safe: every thread that calls it gets its own PyNvVideoCodec decoder, made once and
    pointed at each new file. Failures raise `VideoDecodeError` naming the file.
    """

    def __init__(self, device: int | torch.device = 0) -> None:
        import PyNvVideoCodec as nvc

        self._nvc = nvc
        self.device = torch.device("cuda", device) if isinstance(device, int) else torch.device(device)
        self._local = threading.local()

    def _decoder(self, path: str):  # noqa: ANN202 (PyNvVideoCodec's SimpleDecoder)
        nvc = self._nvc
        decoder = getattr(self._local, "decoder", None)
        if decoder is None:
            decoder = nvc.SimpleDecoder(path, gpu_id=self.device.index or 0, use_device_memory=True,
                                        output_color_type=nvc.OutputColorType.RGBP)
            self._local.decoder = decoder
        else:
            decoder.reconfigure_decoder(path)
        return decoder

    def __call__(self, path: str, indices: Sequence[int] | np.ndarray | Callable[[int], Sequence[int]],
                 resize_to: int | None = None) -> torch.Tensor:
        path = str(path)
        try:
            with torch.cuda.device(self.device):
                decoder = self._decoder(path)
                unique, inverse = frames_to_decode(path, indices, len(decoder))
                frames = decoder.get_batch_frames_by_index([int(i) for i in unique])
                if len(frames) != len(unique):
                    raise VideoDecodeError(f"{path}: NVDEC returned {len(frames)} of {len(unique)} frames")
                # (N, 3, H, W): copied out of the decoder's surfaces, which it reuses
                planes = resize_short_side(torch.stack([torch.from_dlpack(frame) for frame in frames]), resize_to)
                clip = planes[torch.from_numpy(inverse).to(planes.device)]
        except VideoDecodeError:
            self._local.decoder = None  # a failed file can leave the decoder in a bad state
            raise
        except Exception as err:  # noqa: BLE001 (PyNvVideoCodec raises plain RuntimeError / Exception)
            self._local.decoder = None
            raise VideoDecodeError(f"{path}: NVDEC decoding failed ({type(err).__name__}: {err})") from err
        return clip.permute(0, 2, 3, 1)  # (N, H, W, 3), a view


def frames_to_decode(path: str, indices: Sequence[int] | np.ndarray | Callable[[int], Sequence[int]],
                     count: int) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct frames to decode for `indices` (or for a pick given the frame count),
    and where each wanted frame sits among them; errors name the file."""
    wanted = np.asarray(indices(count) if callable(indices) else indices, dtype=np.int64).reshape(-1)
    if wanted.size == 0:
        raise VideoDecodeError(f"{path}: no frame indices given")
    bad = wanted[(wanted < 0) | (wanted >= count)]
    if bad.size:
        raise VideoDecodeError(f"{path}: frame index {int(bad[0])} out of range: the video has {count} frames "
                               f"(0..{count - 1})")
    unique, inverse = np.unique(wanted, return_inverse=True)
    return unique, inverse.reshape(-1)


def resize_short_side(planes: torch.Tensor, short_side: int | None) -> torch.Tensor:
    """(N, 3, H, W) frames with their shorter side `short_side`, sized as `read_video` sizes them."""
    if short_side is None:
        return planes
    height, width = planes.shape[-2:]
    new_width, new_height = stored_size(short_side, width, height)
    return resize(planes, (new_height, new_width))
