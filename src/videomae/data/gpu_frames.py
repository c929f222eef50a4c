"""What a GPU decoder (`nvdec`) needs beside its own calls: which frames to decode for a request, and the
resize to a shorter side as `read_video` sizes it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..transforms import resize
from ..video import VideoDecodeError, stored_size

__all__ = ["frames_to_decode", "resize_short_side"]


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
