"""videomae.video: probing and seek-and-decode reading, against a plain sequential decode."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from video_fixtures import CODEC_CASES, codec_available, decode_all, pattern_frames, write_video

import videomae
from videomae import video as video_module
from videomae.video import VideoDecodeError, VideoInfo, probe_video, read_video

NUM_FRAMES, HEIGHT, WIDTH = 24, 48, 64


@pytest.fixture(scope="module")
def codec_videos(tmp_path_factory):
    """One small video per container / codec, with its sequentially decoded reference frames."""
    folder = tmp_path_factory.mktemp("codecs")
    frames = pattern_frames(NUM_FRAMES, HEIGHT, WIDTH)
    videos = {}
    for name, codec, pix_fmt, options in CODEC_CASES:
        if codec_available(codec):
            path = write_video(folder / name, frames, codec, pix_fmt, options=options)
            videos[name] = (path, decode_all(path))
    return videos


@pytest.mark.parametrize("name", [case[0] for case in CODEC_CASES])
def test_probe_counts_and_describes(codec_videos, name):
    if name not in codec_videos:
        pytest.skip(f"encoder for {name} not available")
    path, reference = codec_videos[name]
    info = probe_video(path)
    assert isinstance(info, VideoInfo)
    assert info.num_frames == NUM_FRAMES == len(reference)
    assert (info.height, info.width) == (HEIGHT, WIDTH)
    assert info.fps == pytest.approx(25.0)
    assert info.duration == pytest.approx(NUM_FRAMES / 25.0, abs=0.1)
    assert info.rotation == 0
    assert info.codec


@pytest.mark.parametrize("name", [case[0] for case in CODEC_CASES])
def test_read_matches_sequential_decode_in_requested_order(codec_videos, name):
    if name not in codec_videos:
        pytest.skip(f"encoder for {name} not available")
    path, reference = codec_videos[name]
    indices = [23, 0, 5, 5, 17, 2, 9, 23, 1]  # unsorted, repeated, spanning several GOPs
    frames = read_video(path, indices)
    assert frames.dtype == torch.uint8 and frames.shape == (len(indices), HEIGHT, WIDTH, 3)
    for row, index in enumerate(indices):
        np.testing.assert_array_equal(frames[row].numpy(), reference[index], err_msg=f"{name} frame {index}")
    everything = read_video(path)
    np.testing.assert_array_equal(everything.numpy(), np.stack(reference))


def test_lossless_frames_are_the_encoded_ones(tmp_path):
    frames = pattern_frames(12, 40, 56, seed=3)
    for path, codec, pix_fmt, options in [
        (tmp_path / "ffv1.mkv", "ffv1", "bgr0", None),
        (tmp_path / "x264rgb.mp4", "libx264rgb", "rgb24", {"qp": "0"}),
    ]:
        if not codec_available(codec):
            continue
        write_video(path, frames, codec, pix_fmt, options=options)
        np.testing.assert_array_equal(read_video(path, [11, 3, 0]).numpy(), frames[[11, 3, 0]])


def test_seeking_decodes_only_what_the_clip_needs(tmp_path, monkeypatch):
    """A late frame of a 90-frame video with keyframes every 10 frames: about one GOP is decoded."""
    frames = pattern_frames(90, 32, 32)
    path = write_video(tmp_path / "gop.mp4", frames, options={"g": "10", "keyint_min": "10", "bf": "0"})
    reference = decode_all(path)
    decoded = []
    original = video_module._packet_frames

    def counting(*args):
        for frame in original(*args):
            decoded.append(frame.pts)
            yield frame

    monkeypatch.setattr(video_module, "_packet_frames", counting)
    out = read_video(path, [85, 3, 88])
    for row, index in enumerate([85, 3, 88]):
        np.testing.assert_array_equal(out[row].numpy(), reference[index])
    assert len(decoded) <= 20, f"decoded {len(decoded)} frames for 3 wanted"


class _MisSeekingContainer:
    """A container whose seeks land at the start (a poor index) or past the target (a bad one).

    A seek to the very first frame stays exact: that is what read_video falls back on.
    """

    def __init__(self, container, late: bool):
        self._container, self._late = container, late

    def seek(self, offset, *, stream, **kwargs):
        if offset <= 0:
            target = offset
        else:
            target = offset + 40 * (stream.time_base.denominator // 25) if self._late else 0
        return self._container.seek(target, stream=stream, **kwargs)

    def __getattr__(self, name):
        return getattr(self._container, name)


@pytest.mark.parametrize("late", [False, True])
def test_imprecise_seeks_still_give_the_right_frames(tmp_path, monkeypatch, late):
    path = write_video(tmp_path / "gop.mkv", pattern_frames(90, 32, 32), options={"g": "10", "bf": "0"})
    reference = decode_all(path)
    original = video_module._open

    def mis_seeking_open(p):
        container, stream, name = original(p)
        return _MisSeekingContainer(container, late), stream, name

    monkeypatch.setattr(video_module, "_open", mis_seeking_open)
    indices = [85, 3, 40, 88, 61]
    out = read_video(path, indices)
    for row, index in enumerate(indices):
        np.testing.assert_array_equal(out[row].numpy(), reference[index])


def test_variable_frame_rate_indices_follow_decode_order(tmp_path):
    """Frame i is the i-th frame shown, however irregular the timestamps."""
    pts = [0, 33, 66, 200, 210, 220, 500, 533, 566, 1000]
    frames = np.stack([np.full((32, 48, 3), 20 * i + 10, np.uint8) for i in range(len(pts))])
    for name, options in [("vfr.mkv", None), ("vfr.mp4", {"bf": "0"})]:
        path = write_video(tmp_path / name, frames, pts_ms=pts, options=options)
        info = probe_video(path)
        assert info.num_frames == len(pts)
        assert info.duration == pytest.approx(1.0, abs=0.1)
        out = read_video(path, [9, 3, 6, 0])
        means = out.float().mean(dim=(1, 2, 3)).numpy()
        np.testing.assert_allclose(means, [190, 70, 130, 10], atol=3)


def test_rotation_metadata_turns_frames_upright(tmp_path):
    frames = np.zeros((4, 32, 48, 3), np.uint8)
    frames[:, :16, :24] = 255  # bright top-left quadrant
    path = write_video(tmp_path / "rotated.mp4", frames, rotation=90)
    info = probe_video(path)
    assert info.rotation == 90 and (info.height, info.width) == (48, 32)
    out = read_video(path, [0, 3])
    assert out.shape == (2, 48, 32, 3)
    # 90 degrees counter-clockwise moves the top-left quadrant to the bottom-left.
    assert out[0, 24:, :16].float().mean() > 200 and out[0, :24, :16].float().mean() < 50


def test_odd_sizes_gray_and_alpha_become_rgb(tmp_path):
    odd = pattern_frames(6, 17, 33)
    path = write_video(tmp_path / "odd.mkv", odd, "ffv1", "yuv444p")
    assert read_video(path, [5]).shape == (1, 17, 33, 3)
    assert probe_video(path).height == 17

    gray = pattern_frames(6, 20, 30)[..., :1]
    path = write_video(tmp_path / "gray.mkv", gray, "ffv1", "gray")
    out = read_video(path, [4, 1]).numpy()
    np.testing.assert_array_equal(out, np.repeat(gray[[4, 1]], 3, axis=-1))
    assert probe_video(path).pixel_format == "gray"

    rgba = np.concatenate([pattern_frames(6, 20, 30), np.full((6, 20, 30, 1), 128, np.uint8)], axis=-1)
    path = write_video(tmp_path / "alpha.mov", rgba, "png", "rgba")
    np.testing.assert_array_equal(read_video(path, [2, 5]).numpy(), rgba[[2, 5], ..., :3])


def test_resize_in_the_decoder(codec_videos):
    path, _ = codec_videos["h264.mp4"]
    assert read_video(path, [0, 1], resize=24).shape == (2, 24, 32, 3)
    with pytest.raises(ValueError, match="resize must be a positive int"):
        read_video(path, [0], resize=0)


def test_probe_without_counting_uses_metadata(codec_videos):
    path, _ = codec_videos["h264.mkv"]  # Matroska stores no frame count: estimated from duration * fps
    assert probe_video(path, count_frames=False).num_frames == pytest.approx(NUM_FRAMES, abs=1)
    path, _ = codec_videos["h264.mp4"]
    assert probe_video(path, count_frames=False).num_frames == NUM_FRAMES


def test_bad_indices_name_the_file_and_the_range(codec_videos):
    path, _ = codec_videos["h264.mp4"]
    with pytest.raises(VideoDecodeError, match=r"h264\.mp4: frame index 24 out of range.*24 frames"):
        read_video(path, [0, 24])
    with pytest.raises(VideoDecodeError, match="out of range"):
        read_video(path, [-1])
    with pytest.raises(VideoDecodeError, match="integers"):
        read_video(path, [0.5])
    with pytest.raises(VideoDecodeError, match="no frame indices"):
        read_video(path, [])
    assert read_video(path, torch.tensor([2, 1])).shape[0] == 2
    seen = []
    out = read_video(path, lambda n: seen.append(n) or [n - 1, 0])  # indices chosen from the frame count
    assert seen == [24] and out.shape[0] == 2


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing.mp4", "no such file"),
        (lambda p: _touch(p / "empty.mp4", b""), "empty file"),
        (lambda p: _touch(p / "notes.mp4", b"these are not the frames you are looking for\n" * 20), "not a readable"),
        (lambda p: _mkdir(p / "folder.mp4"), "is a directory"),
    ],
)
def test_unreadable_files_raise_decode_errors(tmp_path, make, message):
    path = make(tmp_path)
    for call in (lambda: probe_video(path), lambda: read_video(path, [0])):
        with pytest.raises(VideoDecodeError, match=message) as info:
            call()
        assert path.name in str(info.value)
    assert issubclass(VideoDecodeError, ValueError) and videomae.VideoDecodeError is VideoDecodeError


def test_truncated_files(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (40, 48, 64, 3), dtype=np.uint8)
    whole = write_video(tmp_path / "whole.mp4", frames)
    data = whole.read_bytes()
    cut_mp4 = _touch(tmp_path / "cut.mp4", data[: len(data) // 2])  # the index (moov) is at the end
    with pytest.raises(VideoDecodeError, match="cut.mp4"):
        read_video(cut_mp4, [0])
    mkv = write_video(tmp_path / "whole.mkv", frames)
    data = mkv.read_bytes()
    cut_mkv = _touch(tmp_path / "cut.mkv", data[: int(len(data) * 0.6)])
    info = probe_video(cut_mkv)
    assert 0 < info.num_frames < 40  # what survived is counted, and readable
    assert read_video(cut_mkv, [info.num_frames - 1, 0]).shape[0] == 2
    with pytest.raises(VideoDecodeError, match=rf"cut.mkv: frame index {info.num_frames} out of range"):
        read_video(cut_mkv, [info.num_frames])


def test_no_video_stream(tmp_path):
    import av

    path = tmp_path / "sound.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(VideoDecodeError, match="sound.wav: no video stream"):
        probe_video(path)


def _touch(path, data: bytes):
    path.write_bytes(data)
    return path


def _mkdir(path):
    path.mkdir()
    return path
