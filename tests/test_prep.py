"""`videomae prep` and `videomae.prep`: the stored files' properties, labels, resuming after a
failure or a kill, broken inputs, datasets reading prepared files, and the command itself.

Videos are tiny (64x48, about 2 s) so the whole file runs in seconds.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from video_fixtures import pattern_frames, write_video, write_with_audio

from videomae import probe_video, read_video
from videomae.data.datasets import MultiViewDataset, VideoClipDataset, load_records
from videomae.prep import MANIFEST_FILE, PREP_FILE, output_size, prepare, stored_frame_stride

FAST = dict(preset="ultrafast", workers=1, progress=False)  # encoder speed is not what these tests test
# Mean absolute difference (8-bit levels) between a stored frame and the source frame it stands for:
# re-encoding the (already lossy) tiny pattern videos with preset ultrafast, CRF 23, measured at most
# 3.2-3.4 per frame over three videos, while the neighbouring source frames it must not be measured 13+.
PIXEL_TOLERANCE = 5.0


def keyframe_positions(path: Path) -> list[int]:
    """Positions (presentation order) of the packets flagged as keyframes."""
    with av.open(str(path)) as container:
        packets = sorted((p.pts, bool(p.is_keyframe)) for p in container.demux(video=0) if p.size)
    return [i for i, (_, key) in enumerate(packets) if key]


def frame_timestamps(path: Path) -> tuple[list[int], float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sorted(p.pts for p in container.demux(stream) if p.size), float(stream.time_base)


@pytest.fixture
def class_folders(tmp_path: Path) -> Path:
    """src/<class>/<video>: two classes, three 50-frame 64x48 videos at 25 fps."""
    src = tmp_path / "src"
    for i, (name, cls) in enumerate([("a1.mp4", "cat"), ("a2.mp4", "cat"), ("b1.mp4", "dog")]):
        (src / cls).mkdir(parents=True, exist_ok=True)
        write_video(src / cls / name, pattern_frames(50, 48, 64, seed=i), fps=25)
    return src


# --------------------------------------------------------------------------- the stored files
def test_output_size_keeps_aspect_is_even_and_never_upscales() -> None:
    assert output_size(1280, 720, 320) == (568, 320)
    assert output_size(720, 1280, 320) == (320, 568)
    assert output_size(1920, 1080, 256) == (454, 256)  # 455.1 -> even
    assert output_size(64, 48, 320) == (64, 48)  # smaller than asked: kept
    assert output_size(65, 49, 320) == (64, 48)  # odd sizes: evened down


def test_stored_file_properties(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    write_with_audio(src / "talk.mp4", pattern_frames(25, 48, 64))  # 12 fps, with an AAC track
    summary = prepare(src, tmp_path / "dst", short_side=40, frame_stride=3, keyint=4, **FAST)
    out = tmp_path / "dst" / "talk.mp4"
    assert (summary.done, summary.failed) == (1, 0)
    info = probe_video(out)
    assert (info.width, info.height) == (52, 40)  # 40 x 53.3 -> 52, even
    assert info.num_frames == math.ceil(25 / 3)
    assert info.fps == pytest.approx(12 / 3)
    assert info.pixel_format == "yuv420p"
    with av.open(str(out)) as container:
        assert [s.type for s in container.streams] == ["video"]  # audio dropped
    pts, time_base = frame_timestamps(out)
    assert set(np.diff(pts).tolist()) == {round(3 / 12 / time_base)}  # constant frame rate
    keys = keyframe_positions(out)
    assert keys[0] == 0 and max(np.diff(keys + [info.num_frames])) <= 4


def test_rotation_is_applied_to_the_pixels(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    write_video(src / "phone.mp4", pattern_frames(20, 48, 64), fps=10, rotation=90)
    prepare(src, tmp_path / "dst", **FAST)
    out = tmp_path / "dst" / "phone.mp4"
    info = probe_video(out)
    assert (info.rotation, info.width, info.height) == (0, 48, 64)  # upright, no display matrix
    diff = (read_video(out).float() - read_video(src / "phone.mp4").float()).abs().mean()
    assert diff < PIXEL_TOLERANCE


# --------------------------------------------------------------------------- labels and layout
def test_class_folder_source_keeps_layout_and_labels(class_folders: Path, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    prepare(class_folders, dst, **FAST)
    before, names_before = load_records(class_folders)
    after, names_after = load_records(dst)
    assert names_after == names_before == ["cat", "dog"]
    assert [(Path(r.path).relative_to(dst).as_posix(), r.label) for r in after] == \
        [(Path(r.path).relative_to(class_folders).as_posix(), r.label) for r in before]
    assert (dst / "videos.txt").read_text().splitlines() == ["cat/a1.mp4 0", "cat/a2.mp4 0", "dog/b1.mp4 1"]
    assert (dst / "classes.txt").read_text().splitlines() == ["cat", "dog"]
    listed, _ = load_records(dst / "videos.txt")
    assert [r.label for r in listed] == [0, 0, 1]


def test_list_source_keeps_its_labels(class_folders: Path, tmp_path: Path) -> None:
    listing = tmp_path / "train.csv"
    listing.write_text(f"path,label\ncat/a1.mp4,dog\n{class_folders / 'dog' / 'b1.mp4'},cat\n")
    dst = tmp_path / "dst"
    summary = prepare(listing, dst, root=class_folders, **FAST)
    assert summary.list_file == str(dst / "train.txt")
    assert (dst / "train.txt").read_text().splitlines() == ["cat/a1.mp4 dog", "dog/b1.mp4 cat"]
    before, names_before = load_records(listing, root=class_folders)
    after, names_after = load_records(dst / "train.txt")
    assert [r.label for r in after] == [r.label for r in before] == [1, 0]
    assert names_after == names_before
    assert all(Path(r.path).is_file() for r in after)


def test_prep_json_and_stored_frame_stride(class_folders: Path, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    prepare(class_folders, dst, frame_stride=2, keyint=8, **FAST)
    meta = json.loads((dst / PREP_FILE).read_text())
    assert meta["frame_stride"] == 2 and meta["options"]["keyint"] == 8
    assert meta["runs"][-1]["done"] == 3 and meta["runs"][-1]["source"] == str(class_folders.resolve())
    assert stored_frame_stride(dst) == 2
    assert stored_frame_stride(dst / "videos.txt") == 2
    assert stored_frame_stride(class_folders) == 1  # not prepared
    with pytest.raises(ValueError, match="keyint 8 -> 16"):  # files of two formats must not mix
        prepare(class_folders, dst, frame_stride=2, keyint=16, **FAST)


# --------------------------------------------------------------------------- resuming and failures
def test_rerun_redoes_only_missing_or_changed_files(class_folders: Path, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    first = prepare(class_folders, dst, **FAST)
    assert (first.done, first.skipped) == (3, 0)
    kept = dst / "cat" / "a2.mp4"
    kept_stamp = kept.stat().st_mtime_ns
    (dst / "cat" / "a1.mp4").unlink()
    leftover = dst / "dog" / ".b1.mp4.999.prep-tmp"  # what a killed run leaves
    leftover.write_bytes(b"half a video")
    second = prepare(class_folders, dst, **FAST)
    assert (second.done, second.skipped, second.failed) == (1, 2, 0)
    assert (dst / "cat" / "a1.mp4").is_file() and not leftover.exists()
    assert kept.stat().st_mtime_ns == kept_stamp
    write_video(class_folders / "dog" / "b1.mp4", pattern_frames(30, 48, 64, seed=9), fps=25)  # source changed
    third = prepare(class_folders, dst, **FAST)
    assert (third.done, third.skipped) == (1, 2)
    assert probe_video(dst / "dog" / "b1.mp4").num_frames == 30
    # The totals cover the skipped files too: they describe the whole prepared set.
    assert third.bytes_in == sum(p.stat().st_size for p in class_folders.rglob("*.mp4"))
    assert third.bytes_out == sum((dst / p).stat().st_size for p in ("cat/a1.mp4", "cat/a2.mp4", "dog/b1.mp4"))


def _killed_run(src: str, dst: str) -> None:
    """Prepare, but SIGKILL this process halfway through writing the second file."""
    import videomae.prep as prep_module

    real = prep_module.transcode
    calls = []

    def dying(source, target, options, threads=0):  # noqa: ANN001
        if source not in calls:  # a file may be encoded twice (max_size_ratio): count files
            calls.append(source)
        if len(calls) == 2:
            Path(target).write_bytes(b"\x00" * 1000)  # a partial file under the temporary name
            os.kill(os.getpid(), signal.SIGKILL)
        return real(source, target, options, threads)

    prep_module.transcode = dying
    prep_module.prepare(src, dst, preset="ultrafast", workers=1, progress=False)


def test_sigkill_leaves_no_partial_file_under_a_final_name(class_folders: Path, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    child = multiprocessing.get_context("fork").Process(target=_killed_run, args=(str(class_folders), str(dst)))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    finals = sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*.mp4"))
    assert finals == ["cat/a1.mp4"]  # the first file finished; the second is only a temporary
    assert probe_video(dst / "cat" / "a1.mp4").num_frames == 50
    assert len(list(dst.rglob("*.prep-tmp"))) == 1
    resumed = prepare(class_folders, dst, **FAST)
    assert (resumed.done, resumed.skipped) == (2, 1)
    assert not list(dst.rglob("*.prep-tmp"))


def test_broken_file_is_reported_and_skipped(class_folders: Path, tmp_path: Path, caplog) -> None:  # noqa: ANN001
    broken = class_folders / "dog" / "broken.mp4"
    broken.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    dst = tmp_path / "dst"
    with caplog.at_level("WARNING", logger="videomae.prep"):
        summary = prepare(class_folders, dst, preset="ultrafast", workers=2, progress=False)
    assert (summary.done, summary.failed) == (3, 1)
    assert summary.failures[0][0] == str(broken) and "not a readable video" in summary.failures[0][1]
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [str(broken)]  # one line for it
    assert "broken" not in (dst / "videos.txt").read_text()
    assert len((dst / "videos.txt").read_text().splitlines()) == 3
    assert len((dst / MANIFEST_FILE).read_text().splitlines()) == 3


# --------------------------------------------------------------------------- training reads it
def test_stored_frames_are_the_source_frames_at_the_stride(class_folders: Path, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    prepare(class_folders, dst, frame_stride=2, keyint=4, **FAST)
    source, stored = class_folders / "cat" / "a1.mp4", dst / "cat" / "a1.mp4"
    kept = read_video(stored).float()
    assert len(kept) == 25
    every_other = read_video(source, np.arange(0, 50, 2)).float()
    per_frame = (kept - every_other).abs().mean(dim=(1, 2, 3))
    assert per_frame.max() < PIXEL_TOLERANCE
    shifted = read_video(source, np.arange(1, 50, 2)).float()  # the neighbours it must not be
    assert (kept - shifted).abs().mean(dim=(1, 2, 3)).min() > 2 * PIXEL_TOLERANCE

    records, _ = load_records(class_folders)
    prepared, _ = load_records(dst)
    kwargs = dict(num_frames=4, sampling_rate=4, image_size=48, num_clips=2, num_crops=1)
    original = MultiViewDataset(records, **kwargs)[0]["pixel_values"].float()
    from_prep = MultiViewDataset(prepared, frame_stride=2, **kwargs)[0]["pixel_values"].float()
    assert original.shape == from_prep.shape == (2, 4, 3, 48, 48)
    assert (original - from_prep).abs().mean() < PIXEL_TOLERANCE

    clips = VideoClipDataset(prepared, num_frames=4, sampling_rate=4, image_size=32, frame_stride=2)
    assert clips.stored_rate == 2 and clips[0]["pixel_values"].shape == (1, 4, 3, 32, 32)
    with pytest.raises(ValueError, match="sampling_rate 3 .* frame_stride 2"):
        VideoClipDataset(prepared, num_frames=4, sampling_rate=3, image_size=32, frame_stride=2)
    with pytest.raises(ValueError, match="sampling_rate 6 .* frame_stride 4"):
        MultiViewDataset(prepared, num_frames=4, sampling_rate=6, image_size=32, frame_stride=4)
    assert torch.equal(MultiViewDataset(prepared, **kwargs)[0]["pixel_values"],
                       MultiViewDataset(prepared, frame_stride=1, **kwargs)[0]["pixel_values"])


# --------------------------------------------------------------------------- the command
def videomae(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "videomae", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_cli_end_to_end(class_folders: Path, tmp_path: Path) -> None:
    (class_folders / "dog" / "broken.mp4").write_bytes(b"not a video" * 100)
    dst = tmp_path / "dst"
    result = videomae("prep", str(class_folders), str(dst), "--short-side", "40", "--frame-stride", "2",
                      "--keyint", "4", "--preset", "ultrafast", "--workers", "2", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "3 done, 0 skipped (already done), 1 failed of 4" in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"{class_folders / 'dog' / 'broken.mp4'}: not a readable video")
    assert stored_frame_stride(dst / "videos.txt") == 2
    assert probe_video(dst / "cat" / "a1.mp4").height == 40

    missing = videomae("prep", str(tmp_path / "nowhere"), str(dst))
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        f"videomae prep: error: {tmp_path / 'nowhere'}: no such file or folder "
        "(expected a folder of videos or a list file)"]


def test_cli_fails_only_when_every_file_fails(tmp_path: Path) -> None:
    from videomae.cli import main

    src = tmp_path / "src"
    src.mkdir()
    (src / "x.mp4").write_bytes(b"junk" * 10)
    assert main(["prep", str(src), str(tmp_path / "dst"), "--quiet"]) == 1
    assert (tmp_path / "dst" / "videos.txt").read_text() == ""


def test_a_copy_larger_than_max_size_ratio_is_encoded_again_coarser(tmp_path):
    """Noisy, already small sources grow when re-encoded at CRF 23 with short GOPs; the prepared
    set must stay within `max_size_ratio` of its source (here made to bite with a tight ratio)."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (40, 64, 96, 3), dtype=np.uint8)  # noise: the worst case
    (tmp_path / "src").mkdir()
    source = write_video(tmp_path / "src" / "noise.mp4", frames, fps=20)
    loose = prepare(tmp_path / "src", tmp_path / "loose", workers=1, progress=False, max_size_ratio=100.0)
    tight_ratio = loose.ratio * 0.6
    tight = prepare(tmp_path / "src", tmp_path / "tight", workers=1, progress=False, max_size_ratio=tight_ratio)
    assert tight.done == 1 and tight.failed == 0
    assert tight.ratio <= tight_ratio < loose.ratio
    assert source.stat().st_size * tight.ratio == pytest.approx((tmp_path / "tight" / "noise.mp4").stat().st_size)


# --------------------------------------------------------------------------- inference reads it
def test_classify_and_embed_sample_prepared_videos_at_the_source_rate(class_folders: Path, tmp_path: Path) -> None:
    """A clip at sampling rate 4 of a video that keeps every 2nd frame takes every 2nd stored
    frame: the same source frames as in the original (found from the prep.json above the file,
    or given), and its times in seconds are the original's."""
    from videomae import VideoMAEImageProcessor
    from videomae.pipeline import VideoClips
    from videomae.writers import clip_times

    dst = tmp_path / "dst"
    prepare(class_folders, dst, frame_stride=2, keyint=4, **FAST)
    source, stored = class_folders / "cat" / "a1.mp4", dst / "cat" / "a1.mp4"  # prep.json is in dst, above
    processor = VideoMAEImageProcessor(size={"shortest_edge": 48}, crop_size={"height": 48, "width": 48})

    def clips(path: Path, **kwargs) -> torch.Tensor:  # noqa: ANN003
        item = VideoClips([path], processor, 4, 4, 2, **kwargs)[0]
        assert item.error is None, item.error
        return item.clips.float()  # (2, 4, 3, 48, 48)

    original = clips(source)
    assert (clips(stored) - original).abs().mean() < PIXEL_TOLERANCE
    assert (clips(stored, frame_stride=2) - original).abs().mean() < PIXEL_TOLERANCE
    assert (clips(stored, frame_stride=1) - original).abs().mean() > 2 * PIXEL_TOLERANCE  # twice the span
    np.testing.assert_allclose(clip_times(stored, 4, 4, 2), clip_times(source, 4, 4, 2), atol=0.07)
    odd = VideoClips([stored], processor, 4, 3, 2)[0]
    assert odd.clips is None and str(stored) in odd.error and "sampling_rate 3" in odd.error


def test_embed_command_reads_and_takes_the_frame_stride(class_folders: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """`videomae embed` on a prepared folder: the stride reaches the sampling (an explicit
    --frame-stride that the rate is no multiple of is each video's error, naming it)."""
    from videomae import VideoMAEConfig, VideoMAEModel
    from videomae.cli import main

    dst = tmp_path / "dst"
    prepare(class_folders, dst, frame_stride=2, keyint=4, **FAST)
    model = tmp_path / "model"
    VideoMAEModel(VideoMAEConfig(image_size=32, patch_size=8, num_frames=4, hidden_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, intermediate_size=64)).save_pretrained(model)
    common = ["embed", str(dst), "--model", str(model), "--num-clips", "1", "--num-workers", "0",
              "--sampling-rate", "4", "--device", "cpu", "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "a.npy")]) == 0  # prep.json's stride 2 divides 4
    assert np.load(tmp_path / "a.npy").shape == (3, 32)
    capsys.readouterr()
    assert main([*common, "--out", str(tmp_path / "b.npy"), "--frame-stride", "3"]) == 1
    assert f"{dst / 'cat' / 'a1.mp4'}: sampling_rate 4 is not a multiple of the videos' frame_stride 3" in \
        capsys.readouterr().err
