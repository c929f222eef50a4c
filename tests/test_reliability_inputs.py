"""Bad input at every entry point, tried on purpose: video files, tensors and arguments,
configs and checkpoints, the training entry points and the command line.

Every case is a row of a table: the input, and either the exception it must raise (the exact
documented type: `VideoDecodeError` (a ValueError), `ValueError`, `TypeError`,
`FileNotFoundError` or `OSError`) with fragments its message must hold (the input's name and the
problem), or, for an input that is odd but valid, the result it must give (checked against an
independent decode, not just "no error"). Nothing may hang (each test runs under an alarm), crash
the interpreter (the nastiest decode inputs run in a separate process, which must exit cleanly)
or return a wrong result.

Decisions recorded by these tests:
- Non-finite pixels are refused by the processor (ValueError naming the video). The model does
  not check: `isfinite` in its forward would cost a device sync every step. Non-finite pixels
  that reach it anyway give non-finite outputs, never plausible-looking numbers, and training
  stops on a non-finite loss (`TrainingDiverged`, tested in test_train_pretrain.py).
- `read_video` / `probe_video` raise `VideoDecodeError` for every unreadable path, a missing one
  included (as documented there), so that one `except ValueError` covers every unusable video.
  Loading models raises FileNotFoundError for a missing path.
- A still image named .mp4 is a one-frame video: FFmpeg goes by content, not by the name, and the
  frame it gives is exactly the image.
- Alpha in a video file is dropped (`read_video` documents it). Four-channel frames given to the
  processor are kept as four channels, as transformers keeps them (a three-value mean is then
  refused); with `do_convert_rgb=True` the fourth is composited onto white as alpha.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from train_fixtures import FAST, TINY_CONFIG, make_motion_videos
from video_fixtures import (
    decode_all,
    pattern_frames,
    write_audio_only,
    write_mpeg_ts,
    write_video,
    write_with_audio,
)

import videomae
from videomae import (
    VideoMAEConfig,
    VideoMAEForPreTraining,
    VideoMAEForVideoClassification,
    VideoMAEImageProcessor,
    VideoMAEModel,
    probe_video,
    read_video,
)
from videomae import video as video_module
from videomae.video import VideoDecodeError

TINY = dict(TINY_CONFIG, num_hidden_layers=1)


@contextlib.contextmanager
def raises_exactly(error: type[BaseException], *fragments: str, where: str = ""):
    """The block raises `error` itself (not a subclass or a parent) with every fragment in its message."""
    with pytest.raises(BaseException) as info:
        yield info
    label = f"{where}: " if where else ""
    assert type(info.value) is error, f"{label}{type(info.value).__name__}: {info.value} (expected {error.__name__})"
    for fragment in fragments:
        assert fragment in str(info.value), f"{label}{fragment!r} not in {str(info.value)!r}"


@pytest.fixture(autouse=True)
def time_limit():
    """A hang fails the test instead of stalling the run (for Python code; decoding that could
    stall inside FFmpeg runs in a subprocess with its own timeout, below)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(signum, frame):
        raise TimeoutError("ran past 120 s: a hang")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(120)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# =========================================================================== video files
@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad_files")
    frames = pattern_frames(12, 48, 64)
    f: dict[str, Path] = {}
    f["clip.mp4"] = write_video(root / "clip.mp4", frames, options={"g": "4"})
    f["clip.mkv"] = write_video(root / "clip.mkv", frames, options={"g": "4"})
    for source in ("clip.mp4", "clip.mkv"):
        data = f[source].read_bytes()
        for percent in (10, 50, 90):
            name = f"cut{percent}{f[source].suffix}"
            f[name] = root / name
            f[name].write_bytes(data[: len(data) * percent // 100])
    f["empty.mp4"] = root / "empty.mp4"
    f["empty.mp4"].write_bytes(b"")
    f["random.mp4"] = root / "random.mp4"
    f["random.mp4"].write_bytes(np.random.default_rng(0).integers(0, 256, 8192, dtype=np.uint8).tobytes())
    f["text.mp4"] = root / "text.mp4"
    f["text.mp4"].write_text("these are not the frames you are looking for\n" * 50)
    f["png.mp4"] = root / "png.mp4"
    Image.fromarray(frames[0]).save(f["png.mp4"], format="PNG")
    f["jpeg.mp4"] = root / "jpeg.mp4"
    Image.fromarray(frames[0]).save(f["jpeg.mp4"], format="JPEG", quality=95)
    f["audio_only.mp4"] = write_audio_only(root / "audio_only.mp4")
    f["with_audio.mp4"] = write_with_audio(root / "with_audio.mp4", frames)
    f["mpeg2.ts"] = write_mpeg_ts(root / "mpeg2.ts", frames)
    f["one_frame.mp4"] = write_video(root / "one_frame.mp4", frames[:1])
    f["16x16.mp4"] = write_video(root / "16x16.mp4", pattern_frames(6, 16, 16))
    big = np.zeros((2, 2160, 3840, 3), np.uint8)
    big[:, ::9] = 200
    big[1, :, ::7] = 90
    f["4k.mp4"] = write_video(root / "4k.mp4", big, options={"preset": "ultrafast"})
    f["gray.mkv"] = write_video(root / "gray.mkv", frames[..., :1], codec="ffv1", pix_fmt="gray")
    rgba = np.concatenate([frames, np.full((*frames.shape[:3], 1), 100, np.uint8)], axis=-1)
    f["alpha_png.mov"] = write_video(root / "alpha_png.mov", rgba, codec="png", pix_fmt="rgba")
    f["alpha_qtrle.mov"] = write_video(root / "alpha_qtrle.mov", rgba, codec="qtrle", pix_fmt="argb",
                                       src_format="rgba")
    f["alpha_ffv1.mkv"] = write_video(root / "alpha_ffv1.mkv", rgba, codec="ffv1", pix_fmt="yuva420p")
    f["vfr.mkv"] = write_video(root / "vfr.mkv", frames, pts_ms=[0, 10, 50, 60, 200, 210, 215, 400, 401, 500, 800, 801])
    mjpeg = write_video(root / "mjpeg.avi", frames, codec="mjpeg", pix_fmt="yuvj420p")
    f["unknown_codec.avi"] = root / "unknown_codec.avi"  # the codec's FourCC replaced by one nobody knows
    f["unknown_codec.avi"].write_bytes(mjpeg.read_bytes().replace(b"MJPG", b"ZZZZ"))
    f["missing.mp4"] = root / "missing.mp4"
    f["folder.mp4"] = root / "folder.mp4"
    f["folder.mp4"].mkdir()
    f["fifo.mp4"] = root / "fifo.mp4"
    if hasattr(os, "mkfifo"):
        os.mkfifo(f["fifo.mp4"])  # opening it to read would wait for a writer forever
    f["unreadable.mp4"] = root / "unreadable.mp4"
    shutil.copyfile(f["clip.mp4"], f["unreadable.mp4"])
    f["unreadable.mp4"].chmod(0)
    yield f
    f["unreadable.mp4"].chmod(0o600)


def _video_calls(path: Path) -> dict:
    processor = VideoMAEImageProcessor(size={"shortest_edge": 32}, crop_size=32)
    return {
        "probe_video": lambda: probe_video(path),
        "probe_video(count_frames=False)": lambda: probe_video(path, count_frames=False),
        "read_video([0])": lambda: read_video(path, [0]),
        "read_video()": lambda: read_video(path),
        "processor(path)": lambda: processor(str(path), num_frames=4, return_tensors="pt"),
    }


UNREADABLE = [
    ("empty.mp4", "empty file (0 bytes)"),
    ("cut10.mp4", "not a readable video"),
    ("cut50.mp4", "not a readable video"),  # MP4 keeps its index (moov) at the end
    ("cut90.mp4", "not a readable video"),
    ("cut10.mkv", "not a readable video"),
    ("random.mp4", "not a readable video"),
    ("text.mp4", "not a readable video"),
    ("audio_only.mp4", "no video stream (streams: ['audio'])"),
    ("unknown_codec.avi", "no decoder for its video stream"),
    ("missing.mp4", "no such file"),
    ("folder.mp4", "is a directory"),
    ("fifo.mp4", "not a regular file"),
    ("unreadable.mp4", "Permission denied"),
]


@pytest.mark.parametrize("name, problem", UNREADABLE, ids=[c[0] for c in UNREADABLE])
def test_unreadable_files_raise_decode_errors_naming_file_and_problem(files, name, problem):
    path = files[name]
    if name == "fifo.mp4" and not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes on this system")
    if name == "unreadable.mp4" and os.access(path, os.R_OK):
        pytest.skip("running as root: chmod 000 does not stop reading")
    for call_name, call in _video_calls(path).items():  # every entry point, each with the same error
        with raises_exactly(VideoDecodeError, str(path), problem, where=call_name):
            call()


def _same_frames(path: Path, reference: list[np.ndarray]) -> None:
    frames = read_video(path).numpy()
    assert frames.shape[0] == len(reference) == probe_video(path).num_frames
    for got, expected in zip(frames, reference, strict=True):
        np.testing.assert_array_equal(got, expected)
    order = list(range(len(reference)))[::-1] + [0]
    np.testing.assert_array_equal(read_video(path, order).numpy(), np.stack([reference[i] for i in order]))


def _source(files) -> np.ndarray:
    return pattern_frames(12, 48, 64)  # what the fixture encoded


# Inputs that are odd but valid: (name, frames, height, width, extra check).
DECODABLE = [
    ("png.mp4", 1, 48, 64, lambda f, out: np.testing.assert_array_equal(out[0], _source(f)[0])),
    ("jpeg.mp4", 1, 48, 64,
     lambda f, out: np.testing.assert_allclose(out[0], np.asarray(Image.open(f["jpeg.mp4"]).convert("RGB")), atol=12)),
    ("one_frame.mp4", 1, 48, 64, None),
    ("16x16.mp4", 6, 16, 16, None),
    ("gray.mkv", 12, 48, 64,
     lambda f, out: np.testing.assert_array_equal(out, np.repeat(_source(f)[..., :1], 3, axis=-1))),
    ("alpha_png.mov", 12, 48, 64, lambda f, out: np.testing.assert_array_equal(out, _source(f))),
    ("alpha_qtrle.mov", 12, 48, 64, lambda f, out: np.testing.assert_array_equal(out, _source(f))),
    ("alpha_ffv1.mkv", 12, 48, 64,  # yuva420p: colour is subsampled, so close on average only
     lambda f, out: np.abs(out.astype(float) - _source(f)).mean() < 3 or pytest.fail("frames differ")),
    ("vfr.mkv", 12, 48, 64, None),
    ("with_audio.mp4", 12, 48, 64, None),
    ("mpeg2.ts", 12, 48, 64, None),
    ("cut50.mkv", None, 48, 64, None),  # what survived truncation: a prefix of the video
    ("cut90.mkv", None, 48, 64, None),
]


@pytest.mark.parametrize("name, count, height, width, check", DECODABLE, ids=[c[0] for c in DECODABLE])
def test_odd_but_valid_files_decode_exactly(files, name, count, height, width, check):
    path = files[name]
    reference = decode_all(path)  # a plain sequential decode from the start, frame by frame
    if count is None:
        whole = decode_all(files["clip.mkv"])
        assert 0 < len(reference) < len(whole)
        for got, expected in zip(reference, whole, strict=False):
            np.testing.assert_array_equal(got, expected)
    else:
        assert len(reference) == count
    info = probe_video(path)
    assert (info.num_frames, info.height, info.width) == (len(reference), height, width)
    _same_frames(path, reference)
    if check is not None:
        check(files, read_video(path).numpy())
    pixels = VideoMAEImageProcessor()(str(path), return_tensors="pt").pixel_values
    assert pixels.shape == (1, 16, 3, 224, 224) and pixels.dtype == torch.float32
    assert bool(torch.isfinite(pixels).all())
    with raises_exactly(VideoDecodeError, str(path), f"frame index {len(reference)} out of range"):
        read_video(path, [len(reference)])


def test_4k_frames(files):
    path = files["4k.mp4"]
    info = probe_video(path)
    assert (info.num_frames, info.height, info.width) == (2, 2160, 3840)
    frames = read_video(path, [1, 0])
    assert frames.shape == (2, 2160, 3840, 3)
    reference = decode_all(path)
    np.testing.assert_array_equal(frames[0].numpy(), reference[1])
    small = read_video(path, [0, 1], resize=224)
    assert small.shape == (2, 224, 398, 3)
    assert (small[1].float() - small[0].float()).abs().mean() > 5  # the frames differ, as encoded


def test_a_one_frame_video_fills_a_clip_with_that_frame(files):
    pixels = VideoMAEImageProcessor()(str(files["one_frame.mp4"]), return_tensors="pt").pixel_values
    assert bool((pixels == pixels[:, :1]).all())


@pytest.mark.parametrize("resize, problem", [(True, "resize must be a positive int"), (0, "resize must be"),
                                             (2.5, "resize must be")])
def test_bad_read_video_arguments(files, resize, problem):
    with raises_exactly(ValueError, problem, repr(resize)):
        read_video(files["clip.mp4"], [0], resize=resize)


def test_a_seek_the_container_refuses_is_a_decode_error(files, monkeypatch):
    """A damaged AVI index can make every seek fail ("Operation not permitted")."""
    original = video_module._open

    class Refusing:
        def __init__(self, container):
            self._container = container

        def seek(self, *args, **kwargs):
            raise av.error.PermissionError(1, "Operation not permitted")

        def __getattr__(self, name):
            return getattr(self._container, name)

    def refusing_open(path):
        container, stream, name = original(path)
        return Refusing(container), stream, name

    monkeypatch.setattr(video_module, "_open", refusing_open)
    path = files["clip.mkv"]
    with raises_exactly(VideoDecodeError, str(path), "cannot seek to the first frame", "not permitted"):
        probe_video(path)
    with raises_exactly(VideoDecodeError, str(path), "not permitted"):
        read_video(path, [5])


# The worst inputs, decoded in another process: a crash there is a non-zero exit status, a hang a
# timeout. Every call must print an outcome of "ok" or "VideoDecodeError".
_ISOLATED = r"""
import json, sys
from videomae import VideoMAEImageProcessor, probe_video, read_video
processor = VideoMAEImageProcessor(size={"shortest_edge": 32}, crop_size=32)
for path in sys.argv[1:]:
    for name, call in [("probe", lambda: probe_video(path)), ("read", lambda: read_video(path, lambda n: [n - 1, 0])),
                       ("read_all", lambda: read_video(path)),
                       ("processor", lambda: processor(path, num_frames=4, return_tensors="pt"))]:
        try:
            call()
            outcome, message = "ok", ""
        except Exception as err:
            outcome, message = type(err).__name__, str(err)
        print(json.dumps({"path": path, "call": name, "outcome": outcome, "message": message}), flush=True)
"""


def _mutants(source: Path, folder: Path, seed: int) -> list[Path]:
    """Deterministic damage: a corrupted header, flipped bytes, a duplicated chunk, a zeroed chunk."""
    rng = np.random.default_rng(seed)
    data = source.read_bytes()
    n = len(data)
    out = []

    def keep(tag: str, content: bytes) -> None:
        path = folder / f"{source.stem}_{tag}{source.suffix}"
        path.write_bytes(content)
        out.append(path)

    header = bytearray(data)
    header[8:64] = rng.integers(0, 256, 56, dtype=np.uint8).tobytes()
    keep("header", bytes(header))
    flipped = bytearray(data)
    for i in rng.integers(n // 4, n, 40):
        flipped[i] ^= 0xFF
    keep("flipped", bytes(flipped))
    start, size = n // 3, n // 5
    keep("duplicated", data[: start + size] + data[start: start + size] + data[start + size:])
    keep("zeroed", data[:start] + bytes(size) + data[start + size:])
    keep("cut_odd", data[: n - 7])
    return out


def test_corrupt_videos_in_a_separate_process_give_decode_errors_or_frames(files, tmp_path):
    frames = pattern_frames(16, 32, 48)
    sources = [
        write_video(tmp_path / "h264.mp4", frames, options={"g": "4", "bf": "2"}),
        write_video(tmp_path / "h264.mkv", frames, options={"g": "4"}),
        write_video(tmp_path / "vp8.webm", frames, codec="libvpx", options={"g": "4"}),
        write_video(tmp_path / "mpeg4.avi", frames, codec="mpeg4", options={"g": "4"}),
        write_mpeg_ts(tmp_path / "mpeg2.ts", frames),
    ]
    inputs = [m for i, source in enumerate(sources) for m in _mutants(source, tmp_path, i)]
    result = subprocess.run([sys.executable, "-c", _ISOLATED, *map(str, inputs)], capture_output=True, text=True,
                            timeout=300, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 4 * len(inputs)
    unexpected = [r for r in records if r["outcome"] not in ("ok", "VideoDecodeError")]
    assert unexpected == []
    for record in records:
        if record["outcome"] == "VideoDecodeError":
            assert record["path"] in record["message"]
    outcomes = {r["outcome"] for r in records}
    assert outcomes == {"ok", "VideoDecodeError"}  # the damage is varied enough to give both


# =========================================================================== the processor
def _frames(*shape, dtype=np.uint8, fill=None):
    if fill is not None:
        return np.full(shape, fill, dtype=dtype)
    return np.random.default_rng(0).integers(0, 256, shape).astype(dtype)


PROCESSOR_ERRORS = [
    ("nan", lambda: _frames(4, 8, 8, 3, dtype=np.float32, fill=np.nan), {}, ValueError,
     ["video 0", "NaN or infinite"]),
    ("inf", lambda: [_frames(4, 8, 8, 3), _frames(4, 8, 8, 3, dtype=np.float32, fill=-np.inf)], {}, ValueError,
     ["video 1", "NaN or infinite"]),
    ("float64 overflowing float32", lambda: _frames(4, 8, 8, 3, dtype=np.float64, fill=1e300), {}, ValueError,
     ["NaN or infinite"]),
    ("zero height", lambda: np.zeros((4, 0, 8, 3), np.uint8), {}, ValueError, ["video 0", "size 0x8"]),
    ("zero width", lambda: [np.zeros((8, 0, 3), np.uint8)], {}, ValueError, ["size 8x0"]),
    ("complex", lambda: np.zeros((4, 8, 8, 3), np.complex64), {}, TypeError, ["complex64", "not pixels"]),
    ("object array", lambda: np.empty((4, 8, 8, 3), dtype=object), {}, TypeError, ["object"]),
    ("negative int16", lambda: _frames(4, 8, 8, 3, dtype=np.int16, fill=-3), {}, ValueError, ["0..255", "-3"]),
    ("two channels", lambda: np.zeros((4, 8, 8, 2), np.uint8), {}, ValueError, ["channel axis", "(8, 8, 2)"]),
    ("five-d frames", lambda: [np.zeros((1, 1, 8, 8, 3), np.uint8)], {}, ValueError, ["(H, W)", "(1, 1, 8, 8, 3)"]),
    ("None", lambda: None, {}, TypeError, ["NoneType"]),
    ("dict", lambda: {"pixel_values": 1}, {}, TypeError, ["dict"]),
    ("float alpha beyond 0..1", lambda: _frames(2, 8, 8, 4, dtype=np.float32, fill=200.0),
     {"do_rescale": False, "do_convert_rgb": True}, ValueError,
     ["alpha channel of float frames must hold 0..1", "200"]),
    ("RGBA, three-value mean", lambda: _frames(2, 8, 8, 4), {}, ValueError,
     ["video 0 has 4-channel frames", "image_mean has 3 values", "do_convert_rgb=True"]),
    ("std zero", lambda: _frames(4, 8, 8, 3), {"image_std": 0.0}, ValueError, ["std", "non-zero"]),
    ("mean NaN", lambda: _frames(4, 8, 8, 3), {"image_mean": [0.5, float("nan"), 0.5]}, ValueError,
     ["mean must be finite"]),
    ("crop size zero", lambda: _frames(4, 8, 8, 3), {"crop_size": 0}, ValueError, ["size must be positive"]),
    ("size negative", lambda: _frames(4, 8, 8, 3), {"size": -4}, ValueError, ["size must be positive", "-4"]),
    ("data_format", lambda: _frames(4, 8, 8, 3), {"data_format": "NCHW"}, ValueError, ["data_format", "NCHW"]),
    ("num_frames zero", lambda: "{clip}", {"num_frames": 0}, ValueError, ["clip_len", "0"]),
    ("frame_sample_rate zero", lambda: "{clip}", {"frame_sample_rate": 0}, ValueError, ["frame_sample_rate", "0"]),
    ("mixed batch", lambda: ["{clip}", np.zeros((8, 8, 3), np.uint8)], {}, TypeError, ["cannot tell frames"]),
]


def _resolve(value, files):
    if isinstance(value, str):
        return value.format(clip=files["clip.mp4"])
    if isinstance(value, list):
        return [_resolve(v, files) for v in value]
    return value


@pytest.mark.parametrize("case, make, params, error, fragments", PROCESSOR_ERRORS, ids=[c[0] for c in PROCESSOR_ERRORS])
def test_processor_refuses_bad_input_clearly(files, case, make, params, error, fragments):
    with raises_exactly(error, *fragments):
        VideoMAEImageProcessor()(_resolve(make(), files), return_tensors="pt", **params)


@pytest.mark.parametrize("frames", [
    np.zeros((2, 1, 1, 3), np.uint8),  # one pixel
    np.ones((3, 5, 300, 3), np.bool_),  # bool, a 60:1 strip
    np.full((2, 3, 7, 9), 255, np.int64),  # channels first, int64 within 0..255
    [torch.full((9, 7), 0.5, dtype=torch.float16)] * 2,  # gray frames without a channel axis, float16
    np.full((2, 6, 6, 4), 200, np.uint8),  # RGBA, made RGB with do_convert_rgb
])
def test_processor_odd_but_valid_input_gives_finite_pixels_of_the_promised_shape(frames):
    processor = VideoMAEImageProcessor(size={"shortest_edge": 16}, crop_size=16, do_convert_rgb=True)
    out = processor(frames, return_tensors="pt").pixel_values
    assert out.shape == (1, len(frames), 3, 16, 16) and out.dtype == torch.float32
    assert bool(torch.isfinite(out).all()) and float(out.abs().max()) <= 1.0 + 1e-6  # mean = std = 0.5


def test_float_rgba_on_the_0_255_scale_is_composited_like_uint8():
    rgba = _frames(2, 8, 8, 4)
    processor = VideoMAEImageProcessor(size={"shortest_edge": 8}, crop_size=8, do_convert_rgb=True)
    as_uint8 = processor(rgba, return_tensors="pt").pixel_values
    as_float = processor(rgba.astype(np.float32), return_tensors="pt").pixel_values
    torch.testing.assert_close(as_float, as_uint8, atol=1 / 127.5 + 1e-6, rtol=0)  # within one 8-bit level


# =========================================================================== the models
@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    config = VideoMAEConfig(**TINY)
    return {
        "encoder": VideoMAEModel(config).eval(),
        "pretraining": VideoMAEForPreTraining(config).eval(),
        "classifier": VideoMAEForVideoClassification(VideoMAEConfig(**TINY, num_labels=3)).eval(),
        "bf16 encoder": VideoMAEModel(config).eval().to(torch.bfloat16),
        "multi-label classifier": VideoMAEForVideoClassification(
            VideoMAEConfig(**TINY, num_labels=3, problem_type="multi_label_classification")).eval(),
    }


def _pixels(*shape, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0)).to(dtype)


def _mask(batch=2, counts=(16, 16), dtype=torch.bool):
    mask = torch.zeros(batch, 32, dtype=torch.bool)
    for i, count in enumerate(counts):
        mask[i, :count] = True
    return mask.to(dtype)


MODEL_ERRORS = [
    ("rank 4", "encoder", lambda: (_pixels(4, 3, 32, 32),), {}, ["5 dimensions", "(4, 3, 32, 32)"]),
    ("rank 6", "encoder", lambda: (_pixels(1, 1, 4, 3, 32, 32),), {}, ["5 dimensions"]),
    ("channels last", "encoder", lambda: (_pixels(1, 4, 32, 32, 3),), {}, ["32 channels", "expects 3"]),
    ("frames", "classifier", lambda: (_pixels(1, 8, 3, 32, 32),), {}, ["8 frames", "expects 4"]),
    ("size", "pretraining", lambda: (_pixels(2, 4, 3, 48, 32), _mask()), {}, ["48x32", "expects 32x32"]),
    ("empty batch", "encoder", lambda: (_pixels(0, 4, 3, 32, 32),), {}, ["empty batch"]),
    ("numpy pixels", "encoder", lambda: (_pixels(1, 4, 3, 32, 32).numpy(),), {}, ["must be a tensor", "ndarray"]),
    ("uint8 pixels", "encoder", lambda: (torch.zeros(1, 4, 3, 32, 32, dtype=torch.uint8),), {},
     ["floating point", "uint8"]),
    ("float64 pixels", "encoder", lambda: (_pixels(1, 4, 3, 32, 32, dtype=torch.float64),), {},
     ["torch.float64", "weights are torch.float32"]),
    ("bf16 pixels, f32 model", "classifier", lambda: (_pixels(1, 4, 3, 32, 32, dtype=torch.bfloat16),), {},
     ["torch.bfloat16", "weights are torch.float32"]),
    ("f32 pixels, bf16 model", "bf16 encoder", lambda: (_pixels(1, 4, 3, 32, 32),), {},
     ["torch.float32", "weights are torch.bfloat16", "autocast"]),
    ("mask missing", "pretraining", lambda: (_pixels(2, 4, 3, 32, 32),), {}, ["needs bool_masked_pos"]),
    ("mask length", "pretraining", lambda: (_pixels(2, 4, 3, 32, 32), _mask()[:, :31]), {},
     ["(batch=2, num_patches=32)", "(2, 31)"]),
    ("mask unequal counts", "encoder", lambda: (_pixels(2, 4, 3, 32, 32), _mask(counts=(3, 5))), {},
     ["same number of tokens", "[3, 5]"]),
    ("mask int", "pretraining", lambda: (_pixels(2, 4, 3, 32, 32), _mask(dtype=torch.long) * 2), {},
     ["bool tensor", "torch.int64"]),
    ("mask float", "encoder", lambda: (_pixels(2, 4, 3, 32, 32), _mask(dtype=torch.float32)), {},
     ["bool tensor", "torch.float32"]),
    ("mask list", "pretraining", lambda: (_pixels(2, 4, 3, 32, 32), _mask().tolist()), {}, ["must be a tensor"]),
    ("mask hides nothing", "pretraining", lambda: (_pixels(2, 4, 3, 32, 32), _mask(counts=(0, 0))), {},
     ["masks no token"]),
    ("label too big", "classifier", lambda: (_pixels(2, 4, 3, 32, 32),), {"labels": torch.tensor([0, 3])},
     ["[0, 3)", "[3]"]),
    ("label negative", "classifier", lambda: (_pixels(2, 4, 3, 32, 32),), {"labels": torch.tensor([-2, 1])},
     ["[0, 3)", "[-2]"]),
    ("labels batch", "classifier", lambda: (_pixels(2, 4, 3, 32, 32),), {"labels": torch.tensor([0, 1, 2])},
     ["batch_size (2)", "batch_size (3)"]),
    ("multi-label shape", "multi-label classifier", lambda: (_pixels(2, 4, 3, 32, 32),), {"labels": torch.ones(2, 2)},
     ["multi-label targets", "(2, 3)", "(2, 2)"]),
    ("head_mask", "encoder", lambda: (_pixels(1, 4, 3, 32, 32),), {"head_mask": torch.ones(3)},
     ["head_mask", "(1, 3)"]),
]


@pytest.mark.parametrize("case, model, args, kwargs, fragments", MODEL_ERRORS, ids=[c[0] for c in MODEL_ERRORS])
def test_models_refuse_bad_tensors_with_value_errors(models, case, model, args, kwargs, fragments):
    with torch.no_grad(), raises_exactly(ValueError, *fragments):
        models[model](*args(), **kwargs)


def test_non_finite_pixels_give_non_finite_outputs_not_plausible_ones(models):
    """The decision: the processor refuses NaN and inf (above); a model that is handed them anyway
    does not check (that costs a device sync), but its outputs show it: every one is non-finite."""
    pixels = _pixels(2, 4, 3, 32, 32)
    pixels[0, 1, 2, 3, 4] = float("nan")
    with torch.no_grad():
        logits = models["classifier"](pixels).logits
        loss = models["pretraining"](pixels, _mask()).loss
    assert not bool(torch.isfinite(logits[0]).any()) and bool(torch.isfinite(logits[1]).all())
    assert not bool(torch.isfinite(loss))


def test_odd_but_valid_model_input(models):
    with torch.no_grad():
        listed = models["classifier"](_pixels(2, 4, 3, 32, 32), labels=[0, 2]).loss  # labels as a list
        as_tensor = models["classifier"](_pixels(2, 4, 3, 32, 32), labels=torch.tensor([0, 2])).loss
        assert torch.equal(listed, as_tensor)
        with torch.autocast("cpu", torch.bfloat16):  # float32 pixels into a bf16 model, under autocast
            out = models["bf16 encoder"](_pixels(1, 4, 3, 32, 32)).last_hidden_state
        assert out.shape == (1, 32, 32) and bool(torch.isfinite(out.float()).all())
        everything = models["pretraining"](_pixels(2, 4, 3, 32, 32), _mask(counts=(32, 32))).loss
        assert bool(torch.isfinite(everything))


# =========================================================================== configs
CONFIG_ERRORS = [
    (dict(num_frames=4, tubelet_size=3), ["num_frames 4 is not divisible by tubelet_size 3"]),
    (dict(image_size=30, patch_size=8), ["image_size 30x30 is not divisible by patch_size 8"]),
    (dict(image_size=[32, 36]), ["image_size 32x36 is not divisible by patch_size 8"]),
    (dict(num_attention_heads=0), ["num_attention_heads must be positive, got 0"]),
    (dict(decoder_num_attention_heads=0), ["decoder_num_attention_heads must be positive"]),
    (dict(hidden_size=0), ["hidden_size must be positive"]),
    (dict(num_frames=0), ["num_frames must be positive"]),
    (dict(image_size=0), ["image_size height must be positive"]),
    (dict(num_hidden_layers=-1), ["num_hidden_layers must be >= 0"]),
    (dict(intermediate_size=-5), ["intermediate_size must be positive, got -5"]),
    (dict(hidden_dropout_prob=1.5), ["hidden_dropout_prob must be in [0, 1]"]),
    (dict(layer_norm_eps=0.0), ["layer_norm_eps must be positive"]),
    (dict(num_labels=-1), ["num_labels must be a non-negative int, got -1"]),
    (dict(num_labels="3"), ["num_labels must be a non-negative int, got '3'"]),
    (dict(id2label={"cat": "dog"}), ["id2label keys must be class indices", "cat"]),
    (dict(id2label=["a", "b"]), ["id2label must be a mapping, got list"]),
    (dict(image_size=[32, 32, 3]), ["image_size must be an int or [height, width]"]),
    (dict(hidden_size=32.0), ["hidden_size must be an int, got 32.0"]),
    (dict(patch_size=None), ["patch_size must be an int, got None"]),
    (dict(norm_pix_loss="false"), ["norm_pix_loss must be true or false"]),
    (dict(problem_type="ranking"), ["problem_type 'ranking'"]),
]


@pytest.mark.parametrize("fields, fragments", CONFIG_ERRORS, ids=[str(c[0]) for c in CONFIG_ERRORS])
def test_config_fields_out_of_range_or_of_the_wrong_type_are_named(fields, fragments):
    with raises_exactly(ValueError, "VideoMAEConfig", *fragments):
        VideoMAEConfig(**{**TINY, **fields})


CONFIG_FILES = [
    ("list", [1, 2], ValueError, ["config.json", "expected a JSON object, got list"]),
    ("not json", "{'single': 'quotes'}", ValueError, ["config.json", "not valid JSON"]),
    ("string size", {"hidden_size": "768"}, ValueError, ["config.json", "hidden_size must be an int, got '768'"]),
    ("null size", {"num_frames": None}, ValueError, ["config.json", "num_frames must be an int, got None"]),
    ("other model", {"model_type": "videomae_v2"}, ValueError, ["config.json", "model_type 'videomae_v2'"]),
    ("bad labels", {"id2label": {"x": "cat"}}, ValueError, ["config.json", "id2label keys"]),
]


@pytest.mark.parametrize("case, content, error, fragments", CONFIG_FILES, ids=[c[0] for c in CONFIG_FILES])
def test_bad_config_files_name_the_file_and_the_field(tmp_path, case, content, error, fragments):
    (tmp_path / "config.json").write_text(content if isinstance(content, str) else json.dumps(content))
    with raises_exactly(error, str(tmp_path / "config.json"), *fragments):
        VideoMAEConfig.from_pretrained(tmp_path)


def test_a_config_json_with_some_keys_takes_defaults_for_the_rest(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"num_frames": 8, "image_size": 112, "foo": 1}))
    config = VideoMAEConfig.from_pretrained(tmp_path)
    default = VideoMAEConfig()
    assert (config.num_frames, config.image_size) == (8, 112) and config.extra == {"foo": 1}
    for name in ("hidden_size", "patch_size", "tubelet_size", "num_attention_heads", "decoder_hidden_size",
                 "norm_pix_loss", "qkv_bias", "use_mean_pooling", "layer_norm_eps", "num_labels"):
        assert getattr(config, name) == getattr(default, name), name


# =========================================================================== checkpoints
@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("saved") / "model"
    torch.manual_seed(0)
    VideoMAEForVideoClassification(VideoMAEConfig(**TINY, num_labels=3)).save_pretrained(folder)
    return folder


def _copy(saved: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(saved, folder)
    return folder


def _cut(fraction: float = 0.0, size: int | None = None):
    def damage(folder):
        path = folder / "model.safetensors"
        data = path.read_bytes()
        path.write_bytes(data[: size if size is not None else int(len(data) * fraction)])
        return path
    return damage


def _random_bytes(folder):
    path = folder / "model.safetensors"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


def _as_bin(folder, transform=lambda data: data):
    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    path = folder / "pytorch_model.bin"
    torch.save(transform(state), path)
    return path


def _truncated_bin(folder):
    path = _as_bin(folder)
    path.write_bytes(path.read_bytes()[:2000])
    return path


class _RunsCode:
    """Unpickling this runs `touch marker`: what a malicious checkpoint does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_bin(folder):
    return _as_bin(folder, lambda state: {**state, "payload": _RunsCode(folder / "pwned")})


def _wrong_shape(folder):
    path = folder / "model.safetensors"
    state = load_file(str(path))
    state["classifier.weight"] = torch.zeros(5, 32)
    save_file(state, str(path))
    return path


def _sharded(shard_name, index_text=None):
    def damage(folder):
        path = folder / "model.safetensors"
        state = load_file(str(path))
        path.unlink()
        save_file(state, str(folder / "model-00001-of-00001.safetensors"))
        index = {"metadata": {}, "weight_map": {key: shard_name for key in state}}
        (folder / "model.safetensors.index.json").write_text(index_text or json.dumps(index))
        return folder / "model.safetensors.index.json"
    return damage


def _video_as_weights(folder):
    path = folder / "weights.pth"
    path.write_bytes(Path(write_video(folder / "clip.mp4", pattern_frames(2, 16, 16))).read_bytes())
    return path


def _no_config(folder):
    (folder / "config.json").unlink()
    return folder / "config.json"


CHECKPOINT_ERRORS = [
    ("safetensors cut to 10 bytes", _cut(size=10), ValueError, ["not a readable safetensors file"]),
    ("safetensors cut at 50%", _cut(0.5), ValueError, ["not a readable safetensors file"]),
    ("safetensors cut at 90%", _cut(0.9), ValueError, ["not a readable safetensors file"]),
    ("safetensors of random bytes", _random_bytes, ValueError, ["not a readable safetensors file"]),
    ("truncated .bin", _truncated_bin, ValueError, ["not a readable PyTorch checkpoint"]),
    ("pickle that runs code", _evil_bin, ValueError, ["refused to load", "weights_only"]),
    # keys of another model: loaded as transformers does (every weight missing, named in a
    # warning); see test_checkpoint.test_checkpoint_without_videomae_keys_reports_every_weight_missing
    ("a weight of the wrong shape", _wrong_shape, ValueError, ["classifier.weight: checkpoint (5, 32), model (3, 32)",
                                                                "ignore_mismatched_sizes"]),
    ("shard index not JSON", _sharded("x", "{oops"), ValueError, ["not a valid shard index"]),
    ("shard missing", _sharded("model-00009-of-00009.safetensors"), FileNotFoundError,
     ["model-00009-of-00009.safetensors: no such weights file"]),
    ("shard outside the folder", _sharded("../model/model-00001-of-00001.safetensors"), ValueError,
     ["is not a file name in the index's folder"]),
    ("a video as weights", _video_as_weights, ValueError, ["not a readable PyTorch checkpoint"]),
    ("garbage after a pickle opcode", lambda folder: _write_bytes(folder / "garbage.pth", b"\x80\x02" + b"rubbish" * 9),
     ValueError, ["not a readable PyTorch checkpoint", "IndexError"]),
    ("no config.json", _no_config, FileNotFoundError, ["no config.json in this folder"]),
]


@pytest.mark.parametrize("case, damage, error, fragments", CHECKPOINT_ERRORS, ids=[c[0] for c in CHECKPOINT_ERRORS])
def test_damaged_or_hostile_checkpoints_are_refused_by_name(saved, tmp_path, case, damage, error, fragments):
    folder = _copy(saved, tmp_path)
    named = damage(folder)
    source = named if named.suffix == ".pth" else folder
    with raises_exactly(error, *fragments) as info:
        VideoMAEForVideoClassification.from_pretrained(source)
    assert named.name in str(info.value) or str(folder) in str(info.value)
    assert not (folder / "pwned").exists()


def test_missing_weights_are_named_and_initialised_not_silently_zero(saved, tmp_path, caplog):
    folder = _copy(saved, tmp_path)
    state = load_file(str(folder / "model.safetensors"))
    dropped = ["fc_norm.weight", "classifier.bias"]
    save_file({k: v for k, v in state.items() if k not in dropped}, str(folder / "model.safetensors"))
    with caplog.at_level(logging.WARNING, logger="videomae"):
        model, info = VideoMAEForVideoClassification.from_pretrained(folder, output_loading_info=True)
    assert info["missing_keys"] == set(dropped)
    assert all(name in caplog.text for name in dropped) and "newly initialised" in caplog.text
    assert torch.equal(model.fc_norm.weight, torch.ones(32)) and torch.equal(model.classifier.bias, torch.zeros(3))
    assert torch.equal(model.classifier.weight, state["classifier.weight"])


def test_a_config_json_with_some_keys_loads_a_model(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    full = json.loads((folder / "config.json").read_text())
    keep = ["image_size", "patch_size", "num_frames", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "intermediate_size", "id2label"]
    (folder / "config.json").write_text(json.dumps({k: full[k] for k in keep}))
    model = VideoMAEForVideoClassification.from_pretrained(folder)
    assert model.config.tubelet_size == 2 and model.config.use_mean_pooling and model.config.num_labels == 3
    reference = VideoMAEForVideoClassification.from_pretrained(saved)
    pixels = _pixels(1, 4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(pixels).logits, reference(pixels).logits, rtol=0, atol=0)


# =========================================================================== training entry points
@pytest.fixture(scope="module")
def motion(tmp_path_factory) -> Path:
    return make_motion_videos(tmp_path_factory.mktemp("motion"), per_class=2, num_frames=8)


def _train_cases(motion: Path, tmp: Path) -> dict:
    (tmp / "empty").mkdir(exist_ok=True)
    (tmp / "options.json").write_text("{epochs: 1}")
    (tmp / "labels.txt").write_text(f"{motion}/left/00.mp4 walking\n")
    (tmp / "classes.txt").write_text("left\nright\n")
    (tmp / "model.json").write_text(json.dumps({**TINY, "num_frames": 5}))
    (tmp / "run_with_evil_state" / "checkpoint-00000001").mkdir(parents=True, exist_ok=True)
    torch.save({"train_state": _RunsCode(tmp / "pwned")},
               tmp / "run_with_evil_state" / "checkpoint-00000001" / "training_state.pt")
    return {
        "no data": ("pretrain", dict(data=str(tmp / "nowhere")), FileNotFoundError, ["nowhere", "no such file"]),
        "empty folder": ("pretrain", dict(data=str(tmp / "empty")), ValueError, ["empty", "no videos found"]),
        "typo": ("pretrain", dict(data=str(motion), epoch=3), TypeError, ["no option 'epoch'", "'epochs'"]),
        "bad value": ("finetune", dict(data=str(motion), mixup=-1.0), ValueError, ["mixup"]),
        "options not JSON": ("pretrain", dict(options=str(tmp / "options.json")), ValueError,
                             ["options.json", "not valid JSON"]),
        "unknown class name": ("finetune", dict(data=str(tmp / "labels.txt"), labels=str(tmp / "classes.txt")),
                               ValueError, ["labels.txt:1", "label 'walking' is not a known class name"]),
        "labels file missing": ("finetune", dict(data=str(motion), labels=str(tmp / "names.txt")),
                                FileNotFoundError, ["names.txt"]),
        "bigger batch than data": ("pretrain", dict(data=str(motion), batch_size=64), ValueError,
                                   ["4 videos, fewer than one global batch of 64"]),
        "bad model config": ("pretrain", dict(data=str(motion), model=str(tmp / "model.json"), config_overrides={}),
                             ValueError, ["model.json", "num_frames 5 is not divisible by tubelet_size 2"]),
        "init_from missing": ("finetune", dict(data=str(motion), init_from=str(tmp / "nope.pth")), FileNotFoundError,
                              ["nope.pth"]),
        "evaluate missing model": ("evaluate", dict(data=str(motion), model=str(tmp / "no_model")), FileNotFoundError,
                                   ["no_model"]),
        "resume from a hostile checkpoint": ("pretrain", dict(data=str(motion),
                                                              output_dir=str(tmp / "run_with_evil_state"),
                                                              resume=True),
                                             ValueError, ["no checkpoint in", "training_state.pt",
                                                          "not a readable training checkpoint"]),
    }


TRAIN_CASES = ["no data", "empty folder", "typo", "bad value", "options not JSON", "unknown class name",
               "labels file missing", "bigger batch than data", "bad model config", "init_from missing",
               "evaluate missing model", "resume from a hostile checkpoint"]


@pytest.mark.parametrize("case", TRAIN_CASES)
def test_training_entry_points_refuse_bad_setups_before_training(motion, tmp_path, case):
    from videomae.train import evaluate, finetune, pretrain

    entry, options, error, fragments = _train_cases(motion, tmp_path)[case]
    entry_point = {"pretrain": pretrain, "finetune": finetune, "evaluate": evaluate}[entry]
    options = dict(options)
    positional = options.pop("options", None)
    common = dict(FAST, output_dir=str(tmp_path / "out"), epochs=1, batch_size=2)
    if entry == "evaluate":
        common = {k: v for k, v in common.items() if k in ("device", "num_workers", "progress", "precision",
                                                            "sampling_rate", "output_dir")}
    with raises_exactly(error, *fragments):
        if positional is not None:
            entry_point(positional)
        else:
            entry_point(**{**common, **options})
    assert not list((tmp_path / "out").glob("checkpoint-*"))  # it stopped before training
    assert not (tmp_path / "pwned").exists()


# =========================================================================== the command line
def _cli(*args: str) -> tuple[int, str, str]:
    from videomae.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit_info:
            code = exit_info.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def cli_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli") / "classifier"
    torch.manual_seed(0)
    VideoMAEForVideoClassification(VideoMAEConfig(**TINY, id2label={0: "a", 1: "b"})).save_pretrained(folder)
    VideoMAEImageProcessor(size={"shortest_edge": 32}, crop_size=32).save_pretrained(folder)
    return folder


def test_cli_reports_each_broken_video_in_one_line_and_still_classifies_the_good_one(files, cli_model):
    broken = ["empty.mp4", "random.mp4", "cut50.mp4", "audio_only.mp4", "unknown_codec.avi"]
    code, out, err = _cli("classify", files["clip.mp4"], *(files[b] for b in broken), "--model", cli_model,
                          "--format", "jsonl", "--num-clips", "1", "--device", "cpu", "--workers", "1")
    assert code == 1
    assert [json.loads(line)["video"] for line in out.splitlines()] == [str(files["clip.mp4"])]
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("dtype: ")]
    assert "Traceback" not in err and len(lines) == len(broken)
    for name, line in zip(broken, lines, strict=True):
        assert line.startswith("videomae classify: error: ") and str(files[name]) in line


CLI_ERRORS = [
    ("missing video", lambda f, m, t: ["classify", t / "missing.mp4", "--model", m], 1, ["missing.mp4: no such file"]),
    ("missing model", lambda f, m, t: ["embed", f["clip.mp4"], "--model", t / "no_model", "--out", t / "x.npy"], 1,
     ["no_model"]),
    ("hostile checkpoint", lambda f, m, t: ["convert", _evil_pth(t), t / "converted"], 1,
     ["evil.pth", "refused to load"]),
    ("options not JSON", lambda f, m, t: ["pretrain", "--config", _write(t / "o.json", "{")], 1,
     ["o.json", "not valid JSON"]),
    ("flag of the wrong type", lambda f, m, t: ["pretrain", "--epochs", "many"], 2, ["--epochs", "many"]),
    ("a folder for reconstruct", lambda f, m, t: ["reconstruct", t, "--model", m, "--out", t / "r.png"], 1,
     ["is a folder"]),
]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _evil_pth(folder: Path) -> Path:
    torch.save({"model": {"w": torch.zeros(1)}, "payload": _RunsCode(folder / "pwned")}, folder / "evil.pth")
    return folder / "evil.pth"


@pytest.mark.parametrize("case, args, status, fragments", CLI_ERRORS, ids=[c[0] for c in CLI_ERRORS])
def test_cli_errors_are_one_line_naming_the_input(files, cli_model, tmp_path, case, args, status, fragments):
    code, _, err = _cli(*args(files, cli_model, tmp_path))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == status and "Traceback" not in err
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0]
    assert not (tmp_path / "pwned").exists()


def test_the_package_root_exports_the_error_type():
    assert videomae.VideoDecodeError is VideoDecodeError and issubclass(VideoDecodeError, ValueError)
