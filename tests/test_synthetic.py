"""The synthetic motion data set: deterministic, balanced, real video files, and a class that
only the motion tells."""

from __future__ import annotations

import numpy as np
import pytest

from videomae.data.datasets import load_records, read_class_names
from videomae.data.synthetic import BACKGROUNDS, CLASSES, SyntheticSpec, generate, render_clip
from videomae.video import probe_video, read_video


def shape_positions(frames: np.ndarray) -> np.ndarray:
    """(T, 2) position (x, y) of the pixels that differ from the clip's median frame (the
    background), per frame, as a circular mean: the frame wraps around."""
    background = np.median(frames.astype(np.float32), axis=0)
    moving = np.abs(frames.astype(np.float32) - background).sum(-1) > 60  # (T, H, W)
    size = frames.shape[1]
    angle = 2 * np.pi * (np.arange(size) + 0.5) / size
    out = []
    for axis in (2, 1):  # x: columns, y: rows
        weights = moving.sum(axis=3 - axis)  # (T, size) along this axis
        mean = np.arctan2((weights * np.sin(angle)).sum(1), (weights * np.cos(angle)).sum(1))
        out.append((mean % (2 * np.pi)) * size / (2 * np.pi))
    return np.stack(out, axis=1)


def wrapped(delta: np.ndarray, size: int) -> np.ndarray:
    return (delta + size / 2) % size - size / 2


def test_render_is_deterministic_and_uint8() -> None:
    a = render_clip(2, np.random.default_rng(7), num_frames=16, size=32)
    b = render_clip(2, np.random.default_rng(7), num_frames=16, size=32)
    c = render_clip(2, np.random.default_rng(8), num_frames=16, size=32)
    assert a.shape == (16, 32, 32, 3) and a.dtype == np.uint8
    def share_of_commonest(video: np.ndarray) -> float:
        _, counts = np.unique(video.reshape(-1, 3), axis=0, return_counts=True)
        return counts.max() / counts.sum()

    assert share_of_commonest(a) > 0.7  # one background colour
    assert share_of_commonest(render_clip(2, np.random.default_rng(7), 16, 32, background="texture")) < 0.01
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("background", BACKGROUNDS)
def test_the_motion_gives_the_class(background: str) -> None:
    rng = np.random.default_rng(0)
    expected = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
    for i in range(24):
        label = i % len(CLASSES)
        positions = shape_positions(render_clip(label, rng, num_frames=24, size=48, background=background))
        dx, dy = wrapped(np.diff(positions, axis=0), 48).sum(0)  # total displacement, across the wrap
        direction = (int(np.sign(dx)) if abs(dx) > abs(dy) else 0, int(np.sign(dy)) if abs(dy) >= abs(dx) else 0)
        assert direction == expected[CLASSES[label]], (i, dx, dy)
        assert max(abs(dx), abs(dy)) > 0.1 * 48


def test_one_frame_does_not_give_the_class() -> None:
    """Where the shape is in the first, middle or last frame is uniform for every class."""
    rng = np.random.default_rng(1)
    seen = {name: [] for name in CLASSES}
    for i in range(200):
        label = i % len(CLASSES)
        seen[CLASSES[label]].append(shape_positions(render_clip(label, rng, num_frames=16, size=48))[[0, 8, 15]])
    for name in CLASSES:
        positions = np.array(seen[name])  # (clips, 3 frames, 2)
        # every frame, every axis: spread over the whole frame, centred on the middle
        assert (positions.min(axis=0) < 8).all() and (positions.max(axis=0) > 40).all(), name
        assert (np.abs(positions.mean(axis=0) - 24) < 5).all(), name


def test_generate_writes_videos_and_lists(tmp_path) -> None:  # noqa: ANN001
    spec = SyntheticSpec(unlabeled=2, train=2, val=1, test=1, num_frames=12, size=32, seed=3)
    data = generate(tmp_path / "data", spec)
    assert read_class_names(data.labels_path) == list(CLASSES)
    train, _ = load_records(data.list_path("train"))
    assert sorted(r.label for r in train) == sorted(list(range(4)) * 2)
    unlabeled, _ = load_records(data.pretrain_list, labeled=False)
    assert len(unlabeled) == (2 + 2) * 4 and all(r.label == -1 for r in unlabeled)
    info = probe_video(train[0].path)
    assert (info.num_frames, info.height, info.width, info.codec) == (12, 32, 32, "h264")
    # the file holds the rendered clip, up to H.264's loss
    frames = read_video(train[0].path).numpy().astype(np.float32)
    from videomae.data.synthetic import clip_seed

    rendered = render_clip(train[0].label, np.random.default_rng(clip_seed(3, "train", 0)), 12, 32)
    # lossless H.264 with full-resolution colour: flat backgrounds stay flat, which the
    # normalised-pixel loss needs (noise on them becomes unit-variance targets)
    assert np.abs(frames - rendered).max() <= 2

    # the same spec again: nothing is rewritten; another seed: other pixels
    stamp = (tmp_path / "data" / "train" / "00000.mp4").stat().st_mtime_ns
    generate(tmp_path / "data", spec)
    assert (tmp_path / "data" / "train" / "00000.mp4").stat().st_mtime_ns == stamp
    other = generate(tmp_path / "other", SyntheticSpec(unlabeled=0, train=1, val=0, test=0, num_frames=12, size=32,
                                                       seed=4))
    first, _ = load_records(other.list_path("train"))
    assert not np.array_equal(read_video(first[0].path).numpy(), frames.astype(np.uint8))


@pytest.mark.parametrize("bad", [dict(size=33), dict(size=8), dict(num_frames=1), dict(train=-1),
                                 dict(background="stars"), dict(radius=(0.3, 0.2)), dict(radius=(0.0, 0.2)),
                                 dict(travel=(-0.5, 1.0))])
def test_spec_checks(bad: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        SyntheticSpec(**bad)


def test_radius_sets_the_shape_size() -> None:
    def covered(radius: tuple[float, float]) -> float:
        rng = np.random.default_rng(5)
        shares = []
        for i in range(20):
            clip = render_clip(i % 4, rng, num_frames=2, size=48, radius=radius)
            shares.append((np.abs(clip[0].astype(int) - np.median(clip[0], axis=(0, 1))).sum(-1) > 60).mean())
        return float(np.mean(shares))

    small, large = covered((0.08, 0.1)), covered((0.3, 0.35))
    assert 0.005 < small < 0.05 and 0.15 < large < 0.5 and large > 5 * small
