"""Video in: probe a file and decode only the frames a clip needs, with PyAV.

Frame indices. Frame i is the i-th frame in presentation order: the frame with the i-th smallest
timestamp (pts) of the video stream. The timestamps come from one demux pass over the file, which
reads packets without decoding them (a few milliseconds for a clip of seconds), so an index
means the same thing at constant and variable frame rate, in every container, and
`probe_video(path).num_frames` is exactly the number of indices `read_video` accepts. Frame i is
*not* "the frame at time i / fps": with a variable frame rate the two differ, and sampling by
index keeps every decoded frame reachable.

Decoding. `read_video` seeks to the last keyframe at or before the first frame it needs, decodes
forward, and seeks again whenever a later keyframe lies between the frame it is at and the next
one it needs. Packets of frames it will not return and that no other frame references are not
decoded at all (the decoder's "skip non-reference frames" switch, set packet by packet). Only
the returned frames are converted to RGB, through one cached converter.

Frames come back upright (a rotation in the stream's display matrix, as phones write, is applied)
and as RGB whatever the stored format: grayscale is expanded, alpha dropped.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

__all__ = ["VideoDecodeError", "VideoInfo", "probe_video", "read_video"]

PathLike = str | os.PathLike
Container = av.container.InputContainer
Stream = av.video.stream.VideoStream


class VideoDecodeError(ValueError):
    """A video that cannot be read: missing, not a video, empty, truncated, or a bad frame index."""


@dataclass(frozen=True)
class VideoInfo:
    """What `probe_video` learns about a video without decoding it.

    Attributes:
        num_frames: frames in the video stream; the valid indices of `read_video` are
            0 .. num_frames - 1 (an estimate from metadata when probed with `count_frames=False`).
        fps: average frame rate (frames per second).
        duration: seconds.
        height, width: size of the frames `read_video` returns (rotation applied, no resizing).
        codec: decoder name, e.g. "h264".
        rotation: degrees counter-clockwise `read_video` turns the stored frames to make them
            upright: 0, 90, 180 or 270.
        pixel_format: stored pixel format, e.g. "yuv420p" ("gray", "yuva420p", ... are converted
            to RGB on reading).
    """

    num_frames: int
    fps: float
    duration: float
    height: int
    width: int
    codec: str
    rotation: int = 0
    pixel_format: str = ""


@dataclass(frozen=True)
class _FrameIndex:
    """Presentation timestamps of every frame (sorted) and of the keyframes, in stream time base."""

    pts: np.ndarray
    key_pts: list[int]

    def seek_point(self, target_pts: int) -> int:
        """Timestamp of the last keyframe at or before `target_pts` (the first frame if none)."""
        i = bisect.bisect_right(self.key_pts, target_pts) - 1
        return self.key_pts[i] if i >= 0 else int(self.pts[0])


# ---------------------------------------------------------------- opening


def _open(path: PathLike) -> tuple[Container, Stream, str]:
    """Open `path` and pick its first video stream; every failure becomes a VideoDecodeError."""
    name = os.fspath(path)
    if not os.path.exists(name):
        raise VideoDecodeError(f"{name}: no such file")
    if os.path.isdir(name):
        raise VideoDecodeError(f"{name}: is a directory, not a video file")
    if not os.path.isfile(name):  # opening a pipe would wait for a writer forever
        raise VideoDecodeError(f"{name}: not a regular file (a pipe, socket or device), not a video file")
    if os.path.getsize(name) == 0:
        raise VideoDecodeError(f"{name}: empty file (0 bytes)")
    try:
        container = av.open(name, mode="r", timeout=30.0)
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise VideoDecodeError(f"{name}: not a readable video ({err})") from err
    if not container.streams.video:
        kinds = [s.type for s in container.streams]  # read before closing, which empties the list
        container.close()
        raise VideoDecodeError(f"{name}: no video stream (streams: {kinds})")
    stream = container.streams.video[0]
    if stream.codec_context is None:  # FFmpeg has no decoder for what the header names
        container.close()
        raise VideoDecodeError(f"{name}: no decoder for its video stream (an unknown or corrupt codec id)")
    for other in container.streams:
        if other.index != stream.index:
            _discard(other)
    return container, stream, name


def _discard(stream: av.stream.Stream) -> None:
    """Let the demuxer skip the packets of a stream we do not read (audio, subtitles, data)."""
    try:
        stream.discard = av.stream.Discard.all  # PyAV takes the enum member, not its name
    except (AttributeError, TypeError, ValueError):
        pass  # a PyAV without the switch: those packets are read and dropped, which is only slower


def _scan(container: Container, stream: Stream, name: str) -> _FrameIndex:
    """Demux (no decoding) the whole stream and collect frame timestamps and keyframes."""
    pts: list[int] = []
    key_pts: list[int] = []
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:
                continue  # the end-of-stream marker, or samples an edit list cuts
            timestamp = packet.pts if packet.pts is not None else packet.dts
            if timestamp is None:
                raise VideoDecodeError(f"{name}: packets without timestamps; frames cannot be indexed")
            pts.append(timestamp)
            if packet.is_keyframe:
                key_pts.append(timestamp)
    except av.error.FFmpegError as err:
        if not pts:
            raise VideoDecodeError(f"{name}: cannot read packets ({err})") from err
        # A damaged tail: index what could be read; decoding reports missing frames precisely.
    if not pts:
        raise VideoDecodeError(f"{name}: the video stream has no frames")
    return _FrameIndex(pts=np.unique(np.asarray(pts, dtype=np.int64)), key_pts=sorted(set(key_pts)))


# ---------------------------------------------------------------- decoding


def _packet_frames(
    container: Container, stream: Stream, wanted: set[int]
) -> Iterator[av.VideoFrame]:
    """Decoded frames from the current position on; frames nobody needs are not decoded.

    A packet whose timestamp is not wanted is decoded with "skip non-reference frames": if no
    other frame depends on it the decoder drops it without doing the work.
    """
    context = stream.codec_context
    for packet in container.demux(stream):
        skip = packet.pts is not None and packet.pts not in wanted and packet.size > 0
        context.skip_frame = "NONREF" if skip else "DEFAULT"
        yield from context.decode(packet)


def _rewind(container: Container, stream: Stream, first_pts: int) -> None:
    """Go back to the first frame. A seek to the first frame's timestamp can land one keyframe
    later in some containers (MPEG-TS, whose first keyframe is stamped after its decode time);
    a seek to the start of the file, in file time, does not."""
    try:
        container.seek(min(0, container.start_time or 0), stream=None)  # microseconds of file time
    except av.error.FFmpegError:
        try:
            container.seek(first_pts, backward=True, any_frame=False, stream=stream)
        except av.error.FFmpegError as err:
            raise VideoDecodeError(f"{container.name}: cannot seek to the first frame ({err})") from err


def _frame_time(frame: av.VideoFrame) -> int | None:
    return frame.pts if frame.pts is not None else frame.dts


def _decode_wanted(
    container: Container,
    stream: Stream,
    index: _FrameIndex,
    want_pts: np.ndarray,
    name: str,
) -> list[av.VideoFrame]:
    """The decoded frames at the sorted, unique timestamps `want_pts`, in that order.

    A wanted frame the decoder never produced (it dropped or mis-stamped it) is replaced by the
    last frame shown before its time, which is what a player would display then. If a seek lands
    after the frame it aimed for, or past the last frame (a container with a poor index, or
    MPEG-TS), decoding restarts from the first frame and no longer seeks.
    """
    wanted = {int(t) for t in want_pts}
    found: list[av.VideoFrame] = []
    from_start = False
    while len(found) < len(want_pts):
        target = int(want_pts[len(found)])
        if from_start:
            start = int(index.pts[0])
            _rewind(container, stream, start)
        else:
            start = index.seek_point(target)
            container.seek(start, backward=True, any_frame=False, stream=stream)  # also flushes the decoder
        previous: av.VideoFrame | None = None
        outcome = "ended"
        for frame in _packet_frames(container, stream, wanted):
            time = _frame_time(frame)
            if time is None:
                raise VideoDecodeError(f"{name}: the decoder returned a frame without a timestamp")
            if previous is None and time > target:
                outcome = "overshot"
                break
            while len(found) < len(want_pts) and want_pts[len(found)] <= time:
                found.append(frame if want_pts[len(found)] == time else previous)
            if len(found) == len(want_pts):
                outcome = "done"
                break
            next_start = index.seek_point(int(want_pts[len(found)]))
            if not from_start and next_start > time and next_start > start:
                outcome = "jump"  # a keyframe lies between here and the next wanted frame
                break
            previous = frame
        landed_late = outcome == "overshot" or (outcome == "ended" and previous is None)
        if landed_late and not from_start:
            from_start = True  # the seek landed after the frame, or past the last one
        elif outcome == "overshot":
            raise VideoDecodeError(
                f"{name}: cannot reach frame pts {target}: decoding from the start begins at pts {time}"
            )
        elif outcome == "ended" and len(found) < len(want_pts):
            missing = int(np.searchsorted(index.pts, want_pts[len(found)]))
            last = None if previous is None else _frame_time(previous)
            raise VideoDecodeError(
                f"{name}: truncated or corrupt: frame {missing} of {len(index.pts)} could not be decoded "
                f"(the stream ended at pts {last}, frame pts {int(want_pts[len(found)])} was needed)"
            )
    return found


def _to_rgb(frame: av.VideoFrame, reformatter: VideoReformatter, size: tuple[int, int], rotation: int) -> np.ndarray:
    """(H, W, 3) uint8, upright, scaled (if needed) by FFmpeg's converter to `size` = (width, height)."""
    width, height = size
    rgb = reformatter.reformat(frame, width=width, height=height, format="rgb24", interpolation="BILINEAR")
    array = rgb.to_ndarray()
    if rotation:
        array = np.rot90(array, k=rotation // 90)
    return array


def _rotation(frame: av.VideoFrame) -> int:
    """Counter-clockwise degrees that make the frame upright (0, 90, 180, 270)."""
    try:
        degrees = frame.rotation
    except (AttributeError, ValueError, TypeError):
        return 0
    return int(round((degrees or 0) / 90.0)) % 4 * 90


def _first_frame(container: Container, stream: Stream, name: str) -> av.VideoFrame:
    try:
        for frame in container.decode(stream):
            return frame
    except av.error.FFmpegError as err:
        raise VideoDecodeError(f"{name}: cannot decode the first frame ({err})") from err
    raise VideoDecodeError(f"{name}: no frame could be decoded")


def stored_size(size: int, width: int, height: int) -> tuple[int, int]:
    """(width, height) whose shorter side is `size`, the longer one int(size * long / short)."""
    if width <= height:
        return size, int(size * height / width)
    return int(size * width / height), size


# ---------------------------------------------------------------- public


def probe_video(path: PathLike, count_frames: bool = True) -> VideoInfo:
    """Frame count, rate, duration, size, codec and rotation of a video, without decoding it all.

    Args:
        path: a video file (mp4, mkv, webm, avi, mov, ...).
        count_frames: count frames exactly with a demux pass (no decoding; reads the file once).
            False trusts the container's frame count, or duration * fps where it has none (mkv and
            webm do not store one): faster on long files, but only an estimate.

    Raises:
        VideoDecodeError: the file is missing, empty, not a video or has no video frames.
    """
    container, stream, name = _open(path)
    try:
        time_base = stream.time_base or Fraction(1, 1)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if stream.duration is not None:
            duration = float(stream.duration * time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = 0.0
        estimate = 0 if count_frames else stream.frames or int(round(duration * float(rate or 0)))
        if estimate:
            num_frames = estimate
        else:  # counted (also when the container gives nothing to estimate from)
            index = _scan(container, stream, name)
            num_frames = len(index.pts)
            if not rate and num_frames > 1:
                span = float((index.pts[-1] - index.pts[0]) * time_base)
                rate = Fraction(num_frames - 1) / Fraction(span) if span > 0 else None
            _rewind(container, stream, int(index.pts[0]))
        fps = float(rate) if rate else 0.0
        if duration == 0.0 and fps > 0:
            duration = num_frames / fps
        first = _first_frame(container, stream, name)
        rotation = _rotation(first)
        width, height = first.width, first.height
        if rotation in (90, 270):
            width, height = height, width
        return VideoInfo(
            num_frames=int(num_frames),
            fps=fps,
            duration=duration,
            height=height,
            width=width,
            codec=stream.codec_context.name,
            rotation=rotation,
            pixel_format=stream.codec_context.pix_fmt or first.format.name,
        )
    finally:
        container.close()


def read_video(
    path: PathLike,
    indices: Sequence[int] | np.ndarray | torch.Tensor | Callable[[int], Sequence[int]] | None = None,
    resize: int | None = None,
) -> torch.Tensor:
    """Decode the frames at `indices` (positions in presentation order) as RGB.

    Args:
        path: a video file.
        indices: frame indices in any order, repeats allowed (a short video sampled with
            repeats); the output follows this order. None reads every frame. A callable is
            given the number of frames and returns the indices, which saves opening the file
            twice: `read_video(path, lambda n: sample_frame_indices(16, 4, n, generator))`.
        resize: if set, the decoder's converter scales frames so their shorter side is `resize`
            (longer side `int(resize * long / short)`). Much faster than decoding full size and
            resizing after, but its filter is FFmpeg's bilinear, not PIL's: use the processor's
            resize where exact parity with transformers matters.

    Returns:
        uint8 tensor (len(indices), height, width, 3), upright.

    Raises:
        VideoDecodeError: the file is missing, empty, not a video, truncated, or an index is out
            of range.
    """
    if resize is not None and (not isinstance(resize, int) or isinstance(resize, bool) or resize < 1):
        raise ValueError(f"resize must be a positive int (the shorter side), got {resize!r}")
    container, stream, name = _open(path)
    try:
        index = _scan(container, stream, name)
        num_frames = len(index.pts)
        if callable(indices):
            indices = indices(num_frames)
        if indices is None:
            wanted_idx = np.arange(num_frames, dtype=np.int64)
        else:
            wanted_idx = np.asarray(indices.cpu() if isinstance(indices, torch.Tensor) else indices)
            if wanted_idx.ndim != 1 or (wanted_idx.size and not np.issubdtype(wanted_idx.dtype, np.integer)):
                raise VideoDecodeError(
                    f"{name}: indices must be a 1-d sequence of integers, got shape {wanted_idx.shape} "
                    f"of {wanted_idx.dtype}"
                )
            wanted_idx = wanted_idx.astype(np.int64)
        if wanted_idx.size == 0:
            raise VideoDecodeError(f"{name}: no frame indices given")
        bad = wanted_idx[(wanted_idx < 0) | (wanted_idx >= num_frames)]
        if bad.size:
            raise VideoDecodeError(
                f"{name}: frame index {int(bad[0])} out of range: the video has {num_frames} frames "
                f"(0..{num_frames - 1})"
            )
        unique, inverse = np.unique(wanted_idx, return_inverse=True)
        try:
            frames = _decode_wanted(container, stream, index, index.pts[unique], name)
            rotation = _rotation(frames[0])
            # Every frame at the first one's size: a stream that changes resolution still stacks.
            first = frames[0]
            size = (first.width, first.height) if resize is None else stored_size(resize, first.width, first.height)
            reformatter = VideoReformatter()
            converted = [_to_rgb(frame, reformatter, size, rotation) for frame in frames]
        except av.error.FFmpegError as err:
            raise VideoDecodeError(f"{name}: decoding failed ({err})") from err
        return torch.from_numpy(np.stack([converted[i] for i in inverse.reshape(-1)]))
    finally:
        container.close()
