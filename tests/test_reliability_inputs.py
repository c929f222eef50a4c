"""Bad input at every entry point, tried on purpose: here video files, the processor's arrays
and arguments, and the command line; the models' tensors, configs, checkpoints and the training
entry points in test_reliability_models.py.

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
import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from reliability_helpers import TINY, RunsCode, raises_exactly, time_limit  # noqa: F401 (time_limit: autouse)
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
    VideoMAEForVideoClassification,
    VideoMAEImageProcessor,
    probe_video,
    read_video,
)
from videomae import video as video_module
from videomae.video import VideoDecodeError


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


def _evil_pth(folder: Path) -> Path:
    torch.save({"model": {"w": torch.zeros(1)}, "payload": RunsCode(folder / "pwned")}, folder / "evil.pth")
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
