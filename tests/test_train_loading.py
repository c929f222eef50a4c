"""The training data path: chunks that every worker shares, one loader over the whole run, and
the measured share of time spent waiting for data."""

from __future__ import annotations

import torch
from train_fixtures import FAST, make_corrupt_videos, make_motion_videos, one_thread  # noqa: F401 (autouse fixture)

import pytest

from videomae.data.collate import merge_batches
from videomae.data.sampler import ResumableSampler, RunSampler
from videomae.train import pretrain
from videomae.train.metrics import read_metrics
from videomae.train.runner import chunk_size


@pytest.mark.parametrize("per_device, workers, expected", [(64, 16, 4), (8, 1, 8), (8, 0, 8), (32, 15, 2),
                                                           (6, 4, 1), (12, 5, 2), (3, 8, 1)])
def test_chunk_size_divides_the_batch_and_spreads_it_over_the_workers(per_device, workers, expected):
    chunk = chunk_size(per_device, workers)
    assert chunk == expected and per_device % chunk == 0


def test_run_sampler_yields_the_epoch_samplers_keys_back_to_back():
    base = ResumableSampler(10, num_replicas=2, rank=1, seed=3)
    run = list(RunSampler(ResumableSampler(10, num_replicas=2, rank=1, seed=3), per_epoch=4, epochs=3,
                          start_epoch=1, start=2))
    expected = []
    for epoch in (1, 2):
        base.set_epoch(epoch)
        expected += [(i, epoch) for i in base.rank_indices()][2 if epoch == 1 else 0:4]
    assert run == expected and len(expected) == 6
    assert len(RunSampler(base, per_epoch=4, epochs=3, start_epoch=1, start=2)) == 6


def _part(index, weight=1.0, failures=()):
    n = len(index)
    return {"pixel_values": torch.full((max(n, 1), 2, 3, 4, 4), index[0] if n else 0, dtype=torch.uint8),
            "labels": torch.tensor(index or [0]), "index": torch.tensor(index or [-1]), "failures": list(failures),
            "weight": weight, "num_videos": max(n, 1), "bool_masked_pos": torch.ones(max(n, 1), 8, dtype=torch.bool)}


def test_merge_batches_keeps_order_and_leaves_out_failed_chunks():
    batch = merge_batches([_part([0, 1]), _part([], 0.0, [("bad.mp4", "broken")]), _part([4, 5])])
    assert batch["index"].tolist() == [0, 1, 4, 5] and batch["labels"].tolist() == [0, 1, 4, 5]
    assert [p[0, 0, 0, 0, 0].item() for p in batch["pixel_values"]] == [0, 4]
    assert batch["failures"] == [("bad.mp4", "broken")] and batch["weight"] == 1.0
    assert batch["bool_masked_pos"].shape == (4, 8) and batch["num_videos"] == 5
    failed = merge_batches([_part([], 0.0, [("a", "x")]), _part([], 0.0, [("b", "y")])])
    assert failed["weight"] == 0.0 and failed["index"].tolist() == [-1] and len(failed["failures"]) == 2


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    return make_motion_videos(tmp_path_factory.mktemp("motion"), per_class=4)


def test_chunked_loading_with_workers_trains_exactly_as_in_process(videos, tmp_path):
    """Two workers loading 2-video chunks of 4-video batches, across 3 epochs of 2 steps on one loader,
    give the same losses and weights as loading in the training process."""
    common = dict(data=str(videos), epochs=3, batch_size=4, lr=1e-3, warmup_steps=2, num_sample=2,
                  **{**FAST, "num_workers": 0})
    inline = pretrain(output_dir=str(tmp_path / "inline"), **common)
    workers = pretrain(output_dir=str(tmp_path / "workers"), **{**common, "num_workers": 2})
    assert inline["step"] == workers["step"] == 6
    losses = [[r["loss"] for r in read_metrics(tmp_path / run) if r["kind"] == "train"]
              for run in ("inline", "workers")]
    assert losses[0] == losses[1]
    train = [r for r in read_metrics(tmp_path / "workers") if r["kind"] == "train"]
    assert all(0.0 <= r["data_share"] <= 1.0 for r in train)
    epochs = [r for r in read_metrics(tmp_path / "workers") if r["kind"] == "epoch"]
    assert len(epochs) == 3 and all(0.0 <= r["data_share"] <= 1.0 for r in epochs)


def test_a_batch_with_a_broken_video_in_one_chunk_trains_on_the_rest(videos, tmp_path):
    broken = make_corrupt_videos(tmp_path / "bad", next(videos.rglob("*.mp4")))
    listing = tmp_path / "list.txt"
    paths = sorted(videos.rglob("*.mp4"))[:7] + [broken["truncated"]]
    listing.write_text("".join(f"{p} 0\n" for p in paths))
    metrics = pretrain(data=str(listing), output_dir=str(tmp_path / "run"), epochs=1, batch_size=4, lr=1e-3,
                       warmup_steps=1, **{**FAST, "num_workers": 2})
    assert metrics["step"] == 2
    assert list(metrics["skipped_videos"]) == [str(broken["truncated"])]


def test_model_threads_leave_the_workers_their_cpus_and_restore(monkeypatch):
    from videomae import devices

    monkeypatch.setattr(devices, "_available_cpus", lambda: 4)
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        with devices.model_threads(torch.device("cpu"), 3):
            assert torch.get_num_threads() == 1
        with devices.model_threads(torch.device("cpu"), 1):
            assert torch.get_num_threads() == 3
        with devices.model_threads(torch.device("cpu"), 0):  # loading in this process: all CPUs
            assert torch.get_num_threads() == 4
        assert torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(before)
