"""Decoding on the GPU (NVDEC) through NVIDIA DALI's video decoder, an optional extra (`videomae[dali]`).

Why a second GPU decoder: PyNvVideoCodec (`videomae.data.nvdec`) pays a seek and a decoder
set-up on every clip, and on an H200 reached 54-143 clips/s, far under NVDEC's own rate. DALI's
`fn.decoders.video` takes a whole encoded file and a list of frame indices, demuxes on its own
CPU threads and decodes on NVDEC; `benchmarks/dali_probe.py` measures it against PyNvVideoCodec
at the trainer's own indices. Its wheel is large (`nvidia-dali-cuda130` 2.4: 198 MB, 476 MB
installed), so it is an extra of its own, chosen with `decoder="dali"`.

Same contract as `read_video` and `NvdecDecoder`: `decoder(path, indices_or_pick, resize_to)`
-> uint8 (len(indices), H, W, 3) on the decoder's device. Frame i is the i-th frame in
presentation order, as `read_video` counts them (the count comes from the same demux pass, so a
pick callable draws the same indices). DALI's GPU backend decodes H.264, H.265, AV1, MPEG-4,
VP8, VP9 and MJPEG; its CPU backend only VP8, VP9 and MJPEG (the tests use it). Display rotation
is not applied: `videomae prep` writes rotated phone videos upright.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ..video import VideoDecodeError, count_frames
from .gpu_frames import frames_to_decode, resize_short_side

__all__ = ["DaliDecoder", "dali_available"]


def dali_available() -> bool:
    """Whether NVIDIA DALI imports (GPU decoding also needs a CUDA device)."""
    try:
        import nvidia.dali  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


class DaliDecoder:
    """`decoder(path, indices_or_pick, resize_to=None)` -> uint8 (N, H, W, 3) on `device`.

    Thread-safe: every calling thread builds its own DALI pipeline once (one video a run, fed
    from this process), so N threads keep N decodes in flight. Failures raise
    `VideoDecodeError` naming the file.
    """

    def __init__(self, device: int | str | torch.device = 0, threads: int = 2) -> None:
        import nvidia.dali  # noqa: F401  (fail here, clearly, when the extra is missing)

        self.device = torch.device("cuda", device) if isinstance(device, int) else torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.threads = threads
        self._local = threading.local()

    def _pipeline(self):  # noqa: ANN202 (a DALI Pipeline)
        pipe = getattr(self._local, "pipeline", None)
        if pipe is None:
            from nvidia.dali import fn, pipeline_def, types

            gpu = self.device.type == "cuda"

            @pipeline_def(batch_size=1, num_threads=self.threads, device_id=self.device.index if gpu else None,
                          prefetch_queue_depth=1)
            def decode():
                encoded = fn.external_source(name="encoded", dtype=types.UINT8)
                frames = fn.external_source(name="frames", dtype=types.INT32)
                return fn.decoders.video(encoded, device="mixed" if gpu else "cpu", frames=frames)

            pipe = decode()
            pipe.build()
            self._local.pipeline = pipe
        return pipe

    def _copy(self, out) -> torch.Tensor:  # noqa: ANN001 (a DALI TensorList of one sample)
        """A torch copy of the sample. On the GPU the copy is queued on this thread's stream after
        DALI's work (DLPack's stream hand-off); DALI's buffer is kept until the copy has run, since
        DALI may reuse freed memory on its own stream first."""
        if self.device.type != "cuda":
            return torch.from_numpy(np.array(out[0], copy=True))
        with torch.cuda.device(self.device):
            copy = torch.from_dlpack(out[0]).clone()
            done = torch.cuda.Event()
            done.record()
        self._local.held = (done, out)
        return copy

    def _release(self) -> None:
        """Drop the last call's DALI output once the copy made from it has run."""
        held = getattr(self._local, "held", None)
        if held is not None:
            held[0].synchronize()
            self._local.held = None

    def __call__(self, path: str | Path, indices: Sequence[int] | np.ndarray | Callable[[int], Sequence[int]],
                 resize_to: int | None = None) -> torch.Tensor:
        path = str(path)
        unique, inverse = frames_to_decode(path, indices, count_frames(path))  # errors name the file
        self._release()
        try:
            pipe = self._pipeline()
            pipe.feed_input("encoded", [np.fromfile(path, dtype=np.uint8)])
            pipe.feed_input("frames", [unique.astype(np.int32)])
            (out,) = pipe.run()
            frames = self._copy(out)  # (N, H, W, 3) uint8
        except Exception as err:  # noqa: BLE001 (DALI raises RuntimeError with its own context)
            self._local.pipeline = None  # a failed run can leave the pipeline unusable
            raise VideoDecodeError(f"{path}: DALI decoding failed ({type(err).__name__}: "
                                   f"{str(err).strip().splitlines()[0][:200]})") from err
        if frames.shape[0] != unique.size:
            raise VideoDecodeError(f"{path}: DALI returned {frames.shape[0]} of {unique.size} frames")
        planes = resize_short_side(frames.permute(0, 3, 1, 2), resize_to)  # (N, 3, H, W)
        return planes[torch.from_numpy(inverse).to(planes.device)].permute(0, 2, 3, 1)  # (len(indices), H, W, 3)
