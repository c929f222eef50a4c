"""Which frames of a video make a clip: pure functions from sizes (and a generator) to indices.

Indices are positions in the video's frame order (see `videomae.video`), returned as int64 numpy
arrays ready for `read_video`. A video shorter than a clip never fails: its frames are spread over
the clip and repeated, which is how the original VideoMAE loaders pad short videos.
"""

from __future__ import annotations

import numpy as np
import torch

Generator = torch.Generator | np.random.Generator | None

__all__ = ["sample_frame_indices", "uniform_indices", "multi_clip_indices"]


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _randint(low: int, high: int, generator: Generator, size: int | None = None) -> np.ndarray | int:
    """Uniform integer(s) in [low, high), from the generator given or numpy's global state.

    With no generator this draws from `np.random` like the transformers documentation helper, so
    `np.random.seed` reproduces its clips.
    """
    if isinstance(generator, torch.Generator):
        values = torch.randint(low, high, (1 if size is None else size,), generator=generator).numpy()
        return int(values[0]) if size is None else values.astype(np.int64)
    if isinstance(generator, np.random.Generator):
        values = generator.integers(low, high, size=size)
    elif generator is None:
        values = np.random.randint(low, high, size=size)
    else:
        raise TypeError(
            f"generator must be a torch.Generator or numpy.random.Generator, got {type(generator).__name__}"
        )
    return int(values) if size is None else np.asarray(values, dtype=np.int64)


def sample_frame_indices(
    clip_len: int, frame_sample_rate: int, seg_len: int, generator: Generator = None
) -> np.ndarray:
    """A random clip of `clip_len` frames, `frame_sample_rate` apart, inside a video of `seg_len` frames.

    Same rule as the transformers documentation helper (a random end in [clip_len *
    frame_sample_rate, seg_len), `clip_len` evenly spaced indices before it), so with a seeded
    generator clips are reproducible. When the video has no more than `clip_len *
    frame_sample_rate` frames, the indices span the whole video and repeat frames instead of
    failing.

    Returns:
        int64 array of shape (clip_len,), non-decreasing, each in [0, seg_len).
    """
    _check_positive(clip_len=clip_len, frame_sample_rate=frame_sample_rate, seg_len=seg_len)
    converted_len = int(clip_len * frame_sample_rate)
    if seg_len > converted_len:
        end_idx = _randint(converted_len, seg_len, generator)
        start_idx = end_idx - converted_len
    else:
        start_idx, end_idx = 0, seg_len
    indices = np.linspace(start_idx, end_idx, num=clip_len)
    return np.clip(indices, start_idx, end_idx - 1).astype(np.int64)


def uniform_indices(
    clip_len: int, seg_len: int, *, training: bool = True, generator: Generator = None
) -> np.ndarray:
    """One frame from each of `clip_len` equal segments of the video (segment-based sampling).

    Used for Something-Something, where a clip covers the whole action: in training a random
    frame of each segment (the original `seg * (seg_len // clip_len) + randint(seg_len //
    clip_len)`), in evaluation the middle of each segment (`int(tick / 2 + tick * seg)`, tick =
    seg_len / clip_len). Videos shorter than `clip_len` frames repeat frames, in order.

    Returns:
        int64 array of shape (clip_len,), non-decreasing, each in [0, seg_len).
    """
    _check_positive(clip_len=clip_len, seg_len=seg_len)
    segment = seg_len // clip_len
    if training and segment > 0:
        offsets = _randint(0, segment, generator, size=clip_len)
        return np.arange(clip_len, dtype=np.int64) * segment + offsets
    tick = seg_len / clip_len
    indices = np.array([int(tick / 2.0 + tick * i) for i in range(clip_len)], dtype=np.int64)
    return np.minimum(indices, seg_len - 1)


def multi_clip_indices(clip_len: int, frame_sample_rate: int, seg_len: int, num_clips: int) -> np.ndarray:
    """`num_clips` evenly spaced clips for multi-view evaluation (the original VideoMAE test protocol).

    The video is first subsampled at `frame_sample_rate` (frames 0, rate, 2 * rate, ...; the last
    one repeated until there are `clip_len`); clip k starts at `int(k * step)` of that list, with
    step = (len - clip_len) / (num_clips - 1), so the first clip starts at the first frame and the
    last one ends at the end. A single clip is the centred one.

    Returns:
        int64 array of shape (num_clips, clip_len).
    """
    _check_positive(
        clip_len=clip_len, frame_sample_rate=frame_sample_rate, seg_len=seg_len, num_clips=num_clips
    )
    strided = np.arange(0, seg_len, frame_sample_rate, dtype=np.int64)
    if len(strided) < clip_len:
        strided = np.concatenate([strided, np.full(clip_len - len(strided), strided[-1], dtype=np.int64)])
    spare = len(strided) - clip_len
    if num_clips == 1:
        starts = [spare // 2]
    else:
        step = spare / (num_clips - 1)
        starts = [int(k * step) for k in range(num_clips)]
    return np.stack([strided[start : start + clip_len] for start in starts])
