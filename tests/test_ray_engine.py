"""videomae.ray_engine (`embed --engine ray`) on a local Ray instance of 2 CPUs: the same rows as
the single-process Parquet file, an error row for a broken file, decoding and the model in separate
stages, and a killed run that resumes without writing a shard twice or losing one.

One Ray instance serves the whole file (starting one takes seconds); it is shut down at the end."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from videomae import VideoMAEConfig, VideoMAEForVideoClassification
from videomae.cli import main
from videomae.data.synthetic import render_clip, write_video
from videomae.processing import VideoMAEImageProcessor
from videomae.writers import embed_to_parquet

if os.environ.get("CI") != "true":  # CI installs Ray (the ray extra, scripts/test.sh)
    pytest.importorskip("ray", reason="the ray extra: pip install 'videomae[ray]'")
import pyarrow.parquet as pq  # noqa: E402
import ray  # noqa: E402

from videomae.ray_engine import MANIFEST, embed_with_ray, plan_shards, shard_path  # noqa: E402

TINY = dict(image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=1,
            num_attention_heads=2, intermediate_size=64)
CLIPS = dict(num_clips=2, sampling_rate=2, dtype="float32")  # fp32 both ways: "auto" is bf16 on some CPUs


@pytest.fixture(scope="module")
def cluster() -> str:
    """A local Ray instance for this file; its address, for a second process to join."""
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=150 << 20, logging_level=logging.WARNING)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    VideoMAEForVideoClassification(VideoMAEConfig(**TINY, num_labels=3)).eval().save_pretrained(folder)
    VideoMAEImageProcessor(size={"shortest_edge": 32}, crop_size=32, image_mean=[0.45, 0.45, 0.4],
                           image_std=[0.2, 0.25, 0.22]).save_pretrained(folder)
    return folder


def _videos(root: Path, count: int) -> list[Path]:
    """`count` short videos of different lengths and a broken file, sorted."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = [write_video(root / f"v{i:02d}.mp4", render_clip(i % 3, rng, num_frames=12 + 4 * (i % 6), size=32),
                         fps=16)
             for i in range(count)]
    broken = root / "b.mp4"
    broken.write_bytes(b"not a video")
    return sorted([Path(p) for p in paths] + [broken])


def _stamps(out: Path) -> dict[str, tuple[int, int]]:
    """Each shard's inode and modification time: a rewritten shard (a new file renamed over it) changes both."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("shard-*.parquet")}


def test_shards_are_the_sorted_paths_cut_in_order() -> None:
    shards = plan_shards(["c", "a", "b", "a", "e", "d"], 2)
    assert shards == [["a", "b"], ["c", "d"], ["e"]]
    assert plan_shards(["e", "d", "c", "b", "a"], 2) == shards  # any order, duplicates or not: the same shards


# Ray Data's own debug logging (on for the stage check) reads deprecated settings of its DataContext
@pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")
def test_same_rows_as_one_process_and_an_error_row(cluster, model, tmp_path, caplog) -> None:  # noqa: ANN001
    paths = _videos(tmp_path / "videos", 6)
    out = tmp_path / "out"
    with caplog.at_level(logging.DEBUG, logger="videomae.ray_engine"):
        results = sorted(embed_with_ray(paths, str(model), out, kind="mean", shard_size=3, progress=False, **CLIPS),
                         key=lambda r: r.index)  # shards are written as they complete, in any order
    assert [(r.index, r.videos) for r in results] == [(0, 3), (1, 3), (2, 1)]  # 7 files: b.mp4, v00..v05
    assert [len(r.errors) for r in results] == [1, 0, 0] and "b.mp4" in results[0].errors[0]
    # decoding ran in its own tasks, not fused into the model's actors
    assert "Map(decode_row)->" not in caplog.text and "MapBatches(ClipEmbedder)" in caplog.text

    from videomae.pipeline import load_feature_model, load_processor

    net, _ = load_feature_model(str(model))
    single = tmp_path / "single.parquet"
    list(embed_to_parquet(paths, net.eval(), load_processor(str(model), net.config), single, model_id=str(model),
                          kind="mean", num_workers=0, **CLIPS))
    expected, got = pq.read_table(single), pq.read_table(out)
    assert got.schema == expected.schema and got.num_rows == expected.num_rows == 6 * 2 + 1
    assert got.drop_columns(["feature"]).to_pylist() == expected.drop_columns(["feature"]).to_pylist()
    for mine, theirs in zip(got["feature"].to_pylist(), expected["feature"].to_pylist()):
        if theirs is None:
            assert mine is None
            continue
        mine, theirs = np.array(mine), np.array(theirs)
        assert np.linalg.norm(mine - theirs) <= 1e-5 * np.linalg.norm(theirs)

    assert sorted(p.name for p in out.iterdir()) == [MANIFEST] + [shard_path(out, k).name for k in range(3)]
    assert list(embed_with_ray(paths, str(model), out, kind="mean", shard_size=3, progress=False, **CLIPS)) == []
    with pytest.raises(ValueError, match="holds shards of another run: feature_kind 'mean' \\(now 'logits'\\)"):
        list(embed_with_ray(paths, str(model), out, kind="logits", shard_size=3, progress=False, **CLIPS))


def test_a_killed_run_resumes_without_writing_a_shard_twice(cluster, model, tmp_path, capsys) -> None:  # noqa: ANN001
    paths = _videos(tmp_path / "videos", 20)  # 21 shards of one video, written about 40 ms apart here
    out = tmp_path / "out"
    command = ["embed", str(tmp_path / "videos"), "--engine", "ray", "--model", str(model), "--out", str(out),
               "--shard-size", "1", "--num-clips", "2", "--sampling-rate", "2", "--batch-size", "2", "--no-progress"]
    child = subprocess.Popen([sys.executable, "-m", "videomae", *command, "--address", cluster],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    while not _stamps(out) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    stderr = child.communicate()[1].decode()
    written = _stamps(out)
    assert 1 <= len(written) < len(paths), stderr[-2000:]  # killed part way
    (out / f".{shard_path(out, len(paths) - 1).name}.tmp").write_bytes(b"half a shard")  # as a kill mid-write leaves

    broken_shard = shard_path(out, [p.name for p in paths].index("b.mp4")).name
    assert main(command) == (0 if broken_shard in written else 1)  # 1: the broken file's row was written now
    assert _stamps(out).items() >= written.items()  # the shards of the killed run were kept as they were
    assert len(_stamps(out)) == len(paths) and not list(out.glob(".*.tmp"))
    rows = pq.read_table(out).to_pylist()
    assert sorted((r["path"], r["clip"] or 0) for r in rows) == sorted(
        (str(p), c) for p in paths for c in ((0,) if p.name == "b.mp4" else (0, 1)))  # each clip once
    assert f"rows of auto features in {len(paths) - len(written)} new shards" in capsys.readouterr().err


def test_ray_flags_need_the_ray_engine(model, tmp_path, capsys) -> None:  # noqa: ANN001
    video = _videos(tmp_path, 1)[-1]
    assert main(["embed", str(video), "--model", str(model), "--out", str(tmp_path / "f.npy"), "--shard-size",
                 "4"]) == 1
    assert "--shard-size: only with --engine ray" in capsys.readouterr().err
    assert main(["embed", str(video), "--model", str(model), "--out", str(tmp_path / "f.npy"), "--engine",
                 "ray"]) == 1
    assert "--engine ray writes a folder of Parquet shards" in capsys.readouterr().err
