"""MetricsWriter: metrics.jsonl, and the same numbers in TensorBoard when it is installed."""

from __future__ import annotations

import pytest
from train_fixtures import FAST, make_motion_videos

from videomae.train import pretrain
from videomae.train.metrics import MetricsWriter, read_metrics


def _scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series of the TensorBoard event files in `folder`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_gets_the_numbers_of_each_record_and_forgets_redone_steps(tmp_path):
    pytest.importorskip("tensorboard")
    writer = MetricsWriter(tmp_path)
    for step in (1, 2, 3):
        writer.write("train", {"step": step, "loss": 1.0 / step, "lr": 0.5, "finite": float("nan")})
        if step == 2:
            writer.write("epoch", {"step": 2, "epoch": 0, "complete": True, "skipped": []})
    writer.close()
    # a resumed run from step 2 redoes step 3 with another loss
    resumed = MetricsWriter(tmp_path)
    resumed.truncate_after(2)
    resumed.write("train", {"step": 3, "loss": 0.25, "lr": 0.5})
    resumed.write("eval", {"step": 3, "top1": 0.75})
    resumed.close()

    scalars = _scalars(tmp_path / "tensorboard")
    assert scalars["train/loss"] == [(1, 1.0), (2, 0.5), (3, 0.25)]
    assert scalars["train/lr"] == [(1, 0.5), (2, 0.5), (3, 0.5)]
    assert scalars["eval/top1"] == [(3, 0.75)]
    assert scalars["epoch/epoch"] == [(2, 0.0)]
    assert "train/finite" not in scalars and "epoch/complete" not in scalars  # NaN and booleans stay out
    assert [r["loss"] for r in read_metrics(tmp_path) if r["kind"] == "train"] == [1.0, 0.5, 0.25]


def test_only_rank_zero_writes(tmp_path):
    writer = MetricsWriter(tmp_path, enabled=False)
    writer.write("train", {"step": 1, "loss": 1.0})
    writer.close()
    assert list(tmp_path.iterdir()) == []


def test_a_training_run_leaves_its_curves_in_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    videos = make_motion_videos(tmp_path / "videos", per_class=2)
    out = tmp_path / "run"
    result = pretrain(data=str(videos), output_dir=str(out), epochs=2, batch_size=3, lr=1e-3, **FAST)
    losses = [(r["step"], r["loss"]) for r in read_metrics(out) if r["kind"] == "train"]
    board = _scalars(out / "tensorboard")  # readable: the run closed (flushed) its writer
    assert len(losses) == result["step"] > 0
    assert [(s, pytest.approx(v, rel=1e-6)) for s, v in board["train/loss"]] == losses
    assert [s for s, _ in board["epoch/loss"]] == [r["step"] for r in read_metrics(out) if r["kind"] == "epoch"]
