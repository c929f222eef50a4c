"""Which frames of a video make a clip: pure functions from sizes (and a generator) to indices.

Indices are positions in the video's frame order (see `videomae.video`), returned as int64 numpy
arrays ready for `read_video`. A video shorter than a clip never fails: its frames are spread over
the clip and repeated, which is how the original VideoMAE loaders pad short videos (segment
sampling in training takes frame 0 throughout, as the original SSv2 loader does).
"""

from __future__ import annotations

import numpy as np
import torch

Generator = torch.Generator | np.random.Generator | None

__all__ = ["SAMPLINGS", "sample_frame_indices", "uniform_indices", "segment_view_indices", "multi_clip_indices",
           "training_indices", "evaluation_indices", "check_sampling"]

SAMPLINGS = ("dense", "segments")
"""How a clip is cut: `dense`, `num_frames` frames `sampling_rate` apart (Kinetics); `segments`,
one frame from each of `num_frames` equal segments of the whole video (Something-Something)."""


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
    """One frame from each of `clip_len` equal segments of the video (segment-based, TSN sampling).

    Used for Something-Something, where a clip covers the whole action, as the original VideoMAE
    SSv2 loader does. Training: a random frame of each segment, `seg * (seg_len // clip_len) +
    randint(seg_len // clip_len)`; a video with fewer frames than segments gives frame 0 for
    every segment, the original's rule (it has no spare frames to draw from). Evaluation: the
    middle of each segment, view 1 of `segment_view_indices(..., 2)`.

    Returns:
        int64 array of shape (clip_len,), non-decreasing, each in [0, seg_len).
    """
    _check_positive(clip_len=clip_len, seg_len=seg_len)
    if not training:
        return _segment_points(clip_len, seg_len, 1, 2)
    segment = seg_len // clip_len
    if segment == 0:
        return np.zeros(clip_len, dtype=np.int64)
    offsets = _randint(0, segment, generator, size=clip_len)
    return np.arange(clip_len, dtype=np.int64) * segment + offsets


def _segment_points(clip_len: int, seg_len: int, k: int, n: int) -> np.ndarray:
    """Frame `int(tick * k / n + tick * s)` of each segment s, tick = seg_len / clip_len: the
    point k/n of the way into every segment. For n = 2 the same floats as the original's
    `int(tick * s)` and `int(tick / 2.0 + tick * s)`, so the same frames."""
    tick = seg_len / clip_len
    indices = np.array([int(tick * k / n + tick * s) for s in range(clip_len)], dtype=np.int64)
    return np.minimum(indices, seg_len - 1)


def segment_view_indices(clip_len: int, seg_len: int, num_views: int) -> np.ndarray:
    """`num_views` segment-sampled clips for multi-view evaluation (the original SSv2 test protocol).

    The video is cut into `clip_len` equal segments of tick = seg_len / clip_len frames; view k
    takes the frame k / num_views of the way into each segment. The original tests with 2 views:
    the segment starts (`int(tick * s)`) and the segment midpoints (`int(tick / 2.0 + tick * s)`).
    A video with fewer frames than segments repeats frames, in order.

    Returns:
        int64 array of shape (num_views, clip_len).
    """
    _check_positive(clip_len=clip_len, seg_len=seg_len, num_views=num_views)
    return np.stack([_segment_points(clip_len, seg_len, k, num_views) for k in range(num_views)])


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


def check_sampling(sampling: str) -> None:
    """Fail early, naming the choices, on a sampling rule that is not one of `SAMPLINGS`."""
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")


def training_indices(
    sampling: str, clip_len: int, frame_sample_rate: int, seg_len: int, generator: Generator = None
) -> np.ndarray:
    """One random training clip by the named rule: `sample_frame_indices` (dense) or
    `uniform_indices` (segments; `frame_sample_rate` unused). Shape (clip_len,)."""
    check_sampling(sampling)
    if sampling == "segments":
        return uniform_indices(clip_len, seg_len, training=True, generator=generator)
    return sample_frame_indices(clip_len, frame_sample_rate, seg_len, generator)


def evaluation_indices(
    sampling: str, clip_len: int, frame_sample_rate: int, seg_len: int, num_clips: int
) -> np.ndarray:
    """The evaluation clips by the named rule: `multi_clip_indices` (dense) or
    `segment_view_indices` (segments; `frame_sample_rate` unused). Shape (num_clips, clip_len)."""
    check_sampling(sampling)
    if sampling == "segments":
        return segment_view_indices(clip_len, seg_len, num_clips)
    return multi_clip_indices(clip_len, frame_sample_rate, seg_len, num_clips)
