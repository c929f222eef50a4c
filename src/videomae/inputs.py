"""What the processor accepts, turned into clip tensors (t, C, H, W) without needless copies.

A video is a list of frames (PIL images, numpy arrays or tensors; (H, W), (H, W, C) or
(C, H, W)), a 4-d array / tensor, or a file path; a batch is a list of videos or a 5-d array.
Channel position is inferred as transformers infers it. Frames stay uint8 (other integer types
must hold 0..255; floats become float32). Gray is repeated to RGB. Four channels (RGBA PIL images
included) are kept, as transformers keeps them, unless `convert_rgb` asks for the fourth to be
composited onto white as alpha (transformers' `do_convert_rgb`).
Float frames are on the scale the processor assumes: 0..255 when it rescales (as transformers
assumes), 0..1 when it does not; their alpha is read on the same scale. NaN and infinite values
are refused here, once per call, rather than in the model, where checking would cost a device
sync every step.
Arrays are shared with torch rather than copied wherever the memory allows it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["as_clips", "concat_clips"]

PathLike = str | os.PathLike


def as_clips(
    videos: Any, input_data_format: str | None, read_file: Callable[[PathLike], torch.Tensor],
    float_white: float = 1.0, convert_rgb: bool = True,
) -> list[tuple[int, torch.Tensor]]:
    """The input as (video number, clip (t, C, H, W), uint8 or float32) pieces, in order.

    A video is usually one piece; frames of different sizes within a video make several.
    `read_file` turns a path into (frames, H, W, 3) uint8 frames. C is 3, or 4 for four-channel
    frames when `convert_rgb` is False (with it, their alpha is composited onto white).
    `float_white` is white (and opaque alpha) in float frames: 255.0 or 1.0.
    """
    batch = _split_batch(videos)
    pieces: list[tuple[int, torch.Tensor]] = []
    for number, video in enumerate(batch):
        pil = False
        if isinstance(video, (str, os.PathLike)):
            clips, fmt = [read_file(video)], "channels_last"
        elif isinstance(video, (np.ndarray, torch.Tensor)):
            clips, fmt = [_to_tensor(video)], input_data_format
        else:
            if len(video) == 0:
                raise ValueError(f"video {number} has no frames")
            pil = all(_is_pil(frame) for frame in video)
            clips, fmt = _stack_frames(video, convert_rgb), input_data_format
        for clip in clips:
            if clip.dim() not in (3, 4):
                raise ValueError(
                    f"video {number} has shape {tuple(clip.shape)}: expected (frames, H, W, C) or "
                    "(frames, C, H, W)"
                )
            if clip.shape[0] == 0:
                raise ValueError(f"video {number} has no frames (shape {tuple(clip.shape)})")
            clip = _as_supported_dtype(_channels_first(clip, fmt, pil))
            if clip.shape[-2] == 0 or clip.shape[-1] == 0:
                raise ValueError(f"video {number} has frames of size {clip.shape[-2]}x{clip.shape[-1]} (height x "
                                 "width): expected at least one pixel")
            # Checked here, once, rather than in the model, where it would cost a device sync every step.
            if clip.is_floating_point() and not bool(torch.isfinite(clip).all()):
                raise ValueError(f"video {number} has NaN or infinite pixel values (as float32): expected finite "
                                 "values, 0..255 or 0..1")
            keep = clip.shape[1] == 4 and not convert_rgb
            pieces.append((number, clip if keep else _as_rgb(clip, float_white)))
    return pieces


def _split_batch(videos: Any) -> list[Any]:
    """One video or a batch -> a list of videos (each a path, a 4-d array/tensor or a list of frames)."""
    if isinstance(videos, (str, os.PathLike)):
        return [videos]
    if _is_pil(videos):
        return [[videos]]
    if isinstance(videos, (np.ndarray, torch.Tensor)):
        if videos.ndim in (2, 3):
            return [[videos]]  # a single frame, as transformers treats a 3-d input
        if videos.ndim == 4:
            return [videos]
        if videos.ndim == 5:
            return list(videos)
        raise ValueError(
            f"videos has shape {tuple(videos.shape)}: expected a frame (3-d), a video (frames, H, W, C) "
            "or (frames, C, H, W), or a batch of videos (5-d)"
        )
    if not isinstance(videos, (list, tuple)):
        raise TypeError(
            f"videos must be a path, a list of frames, an array / tensor, or a list of videos; got "
            f"{type(videos).__name__}"
        )
    if len(videos) == 0:
        raise ValueError("videos is empty: expected a video (a list of frames) or a list of videos")
    if all(isinstance(v, (str, os.PathLike)) for v in videos):
        return list(videos)
    if all(isinstance(v, (list, tuple)) for v in videos):
        return list(videos)
    if all(isinstance(v, (np.ndarray, torch.Tensor)) and v.ndim == 4 for v in videos):
        return list(videos)
    if all(_is_frame_like(v) for v in videos):
        return [list(videos)]
    kinds = sorted({type(v).__name__ for v in videos})
    raise TypeError(f"cannot tell frames from videos in a list of {kinds}: use one kind per list")


def concat_clips(clips: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate (t, C, H, W) clips along t, keeping channels-last memory when they all have it.

    Clips that are consecutive slices of one tensor (`list(frames.reshape(clips, T, ...))`) are
    viewed together instead of copied.
    """
    if len(clips) == 1:
        return clips[0]
    first = clips[0]
    if all(c.stride() == first.stride() and c.dtype == first.dtype and c.device == first.device for c in clips):
        step = first.stride(0) * first.element_size()
        starts = [c.data_ptr() for c in clips]
        ends = [start + c.shape[0] * step for start, c in zip(starts, clips, strict=True)]
        same_storage = all(c.untyped_storage().data_ptr() == first.untyped_storage().data_ptr() for c in clips)
        if same_storage and starts[1:] == ends[:-1]:
            total = sum(c.shape[0] for c in clips)
            return first.as_strided((total, *first.shape[1:]), first.stride())
    if all(clip.permute(0, 2, 3, 1).is_contiguous() for clip in clips):
        return torch.cat([clip.permute(0, 2, 3, 1) for clip in clips]).permute(0, 3, 1, 2)
    return torch.cat(clips)


def _is_frame_like(x: Any) -> bool:
    return _is_pil(x) or isinstance(x, (np.ndarray, torch.Tensor))


def _is_pil(x: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        return False
    return isinstance(x, Image.Image)


def _pil_to_array(image: Any, convert_rgb: bool = True) -> np.ndarray:
    """(H, W, 3) uint8; transparency composited onto white, as transformers' convert_to_rgb does.

    Without `convert_rgb`, a four-band image (RGBA) is its (H, W, 4) bands, as transformers reads it.
    """
    from PIL import Image

    if not convert_rgb and len(image.getbands()) == 4:
        return np.asarray(image)
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(image.convert("RGB"))


def _to_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A tensor sharing the array's memory when torch can (it is only read, never written)."""
    if isinstance(x, torch.Tensor):
        return x
    if any(stride < 0 for stride in x.strides):
        x = np.ascontiguousarray(x)  # e.g. a reversed channel axis; torch has no negative strides
    if not x.flags.writeable:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "not writable": nothing here writes to it
            return torch.from_numpy(x)
    return torch.from_numpy(x)


def _stack_arrays(frames: list[np.ndarray]) -> np.ndarray:
    """np.stack, without the copy when the frames are evenly spaced views of one buffer.

    That is the common `processor(list(video))` call on a (frames, H, W, C) array: the frames
    are `video[0], video[1], ...`, and a strided view over them is the video again.
    """
    first = frames[0]
    addresses = [frame.__array_interface__["data"][0] for frame in frames]
    step = addresses[1] - addresses[0] if len(frames) > 1 else 0
    if (
        step > 0
        and first.base is not None
        and min(first.strides, default=1) > 0
        and all(f.base is first.base and f.strides == first.strides and f.dtype == first.dtype for f in frames)
        and all(address == addresses[0] + i * step for i, address in enumerate(addresses))
    ):
        return np.lib.stride_tricks.as_strided(
            first, shape=(len(frames), *first.shape), strides=(step, *first.strides), writeable=False
        )
    return np.stack(frames)


def _stack_frames(frames: Sequence[Any], convert_rgb: bool = True) -> list[torch.Tensor]:
    """Frames of one video -> stacked tensors (t, ...), one per run of equally shaped frames."""
    arrays = [_pil_to_array(f, convert_rgb) if _is_pil(f) else f for f in frames]
    for frame in arrays:
        if not isinstance(frame, (np.ndarray, torch.Tensor)):
            raise TypeError(f"a frame must be a PIL image, numpy array or torch tensor, got {type(frame).__name__}")
        if frame.ndim not in (2, 3):
            raise ValueError(f"a frame must have shape (H, W), (H, W, C) or (C, H, W), got {tuple(frame.shape)}")
    runs: list[list[Any]] = []
    for frame in arrays:
        if runs and tuple(runs[-1][-1].shape) == tuple(frame.shape) and type(runs[-1][-1]) is type(frame):
            runs[-1].append(frame)
        else:
            runs.append([frame])
    stacked = []
    for run in runs:
        if isinstance(run[0], np.ndarray):
            stacked.append(_to_tensor(_stack_arrays(run)))
        else:
            stacked.append(_stack_tensors(run))
    return stacked


def _stack_tensors(frames: list[torch.Tensor]) -> torch.Tensor:
    """torch.stack, without the copy when the frames are evenly spaced views of one storage."""
    first = frames[0]
    starts = [frame.data_ptr() for frame in frames]
    step = starts[1] - starts[0] if len(frames) > 1 else 0
    if (
        step > 0
        and step % first.element_size() == 0
        and all(
            f.stride() == first.stride()
            and f.dtype == first.dtype
            and f.device == first.device
            and f.untyped_storage().data_ptr() == first.untyped_storage().data_ptr()
            for f in frames
        )
        and all(start == starts[0] + i * step for i, start in enumerate(starts))
    ):
        return first.as_strided((len(frames), *first.shape), (step // first.element_size(), *first.stride()))
    return torch.stack(frames)


def _channels_first(clip: torch.Tensor, input_data_format: str | None, pil: bool) -> torch.Tensor:
    """(t, H, W) / (t, H, W, C) / (t, C, H, W) -> (t, C, H, W), a view where possible."""
    if clip.dim() == 3:  # grayscale frames without a channel axis
        return clip.unsqueeze(1)
    if pil or input_data_format == "channels_last":
        fmt = "channels_last"
    elif input_data_format == "channels_first":
        fmt = "channels_first"
    elif clip.shape[1] in (1, 3, 4):
        fmt = "channels_first"  # transformers' choice when both ends could be channels
    elif clip.shape[3] in (1, 3, 4):
        fmt = "channels_last"
    else:
        raise ValueError(
            f"cannot find the channel axis of frames shaped {tuple(clip.shape[1:])}: expected 1, 3 or 4 "
            "channels first (C, H, W) or last (H, W, C); pass input_data_format if it is ambiguous"
        )
    return clip.permute(0, 3, 1, 2) if fmt == "channels_last" else clip


def _as_rgb(clip: torch.Tensor, float_white: float = 1.0) -> torch.Tensor:
    """(t, C, H, W) with C in {1, 3, 4} -> (t, 3, H, W): gray repeated, alpha composited onto white."""
    channels = clip.shape[1]
    if channels == 3:
        return clip
    if channels == 1:
        return clip.expand(-1, 3, -1, -1)
    if channels != 4:
        raise ValueError(f"frames have {channels} channels (shape {tuple(clip.shape)}); expected 1, 3 or 4")
    white = 255.0 if clip.dtype == torch.uint8 else float_white
    rgb, alpha = clip[:, :3].float(), clip[:, 3:].float() / white
    if clip.is_floating_point() and not bool(((alpha >= 0) & (alpha <= 1)).all()):
        raise ValueError(f"the alpha channel of float frames must hold 0..{white:g} (0..255 when the processor "
                         f"rescales, 0..1 when it does not), got {float(clip[:, 3:].min()):g}.."
                         f"{float(clip[:, 3:].max()):g}")
    blended = alpha * rgb + (1 - alpha) * white
    return blended.round().to(torch.uint8) if clip.dtype == torch.uint8 else blended.to(clip.dtype)


def _as_supported_dtype(clip: torch.Tensor) -> torch.Tensor:
    """uint8 stays (the fast path); other integers must hold 0..255; floats become float32."""
    if clip.dtype == torch.uint8:
        return clip
    if clip.is_complex():
        raise TypeError(f"frames of dtype {clip.dtype} are not pixels: expected uint8, integers in 0..255 or floats")
    if clip.is_floating_point():
        return clip if clip.dtype == torch.float32 else clip.float()
    if clip.dtype == torch.bool or clip.numel() == 0:
        return clip.to(torch.uint8)
    low, high = int(clip.min()), int(clip.max())
    if low < 0 or high > 255:
        raise ValueError(f"integer frames must hold values in 0..255, got {low}..{high} ({clip.dtype})")
    return clip.to(torch.uint8)
