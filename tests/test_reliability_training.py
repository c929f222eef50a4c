"""Faults during training, injected on purpose, on a tiny model on the CPU.

- The process killed (SIGKILL, no chance to clean up) three times at random moments, each time
  resumed: the run ends with exactly the weights, and the loss curve, of an uninterrupted run.
- What an interrupted write can leave (a hidden temporary checkpoint folder, a damaged newest
  checkpoint, a torn last line in metrics.jsonl) is never loaded, and the run says so.
- A checkpoint write that fails (a full disk, as torch.save and safetensors report it; no
  permission) stops the run with an OSError naming the checkpoint and the one still intact;
  the run resumes from that one once there is room.
- A data set with 10% broken files trains to the end and reports each broken file once per pass.

Already covered elsewhere and not repeated: a diverging (NaN) loss stops with TrainingDiverged
and keeps the last good checkpoint, an output path under a file fails before training
(test_train_pretrain.py).
"""

from __future__ import annotations

import errno
import json
import logging
import multiprocessing
import os
import random
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import SafetensorError
from train_fixtures import FAST, make_motion_videos
from video_fixtures import write_audio_only, write_with_audio

from videomae import VideoMAEForPreTraining, VideoMAEForVideoClassification
from videomae.train import finetune, pretrain
from videomae.train import checkpointing
from videomae.train.checkpointing import list_checkpoints, load_checkpoint
from videomae.train.metrics import read_metrics

# 8 videos, 4 a step: 2 steps an epoch, 12 in all, a checkpoint after each.
COMMON = dict(epochs=6, batch_size=4, lr=1e-3, warmup_steps=2, checkpoint_every=1, keep_last=2, **FAST)
TOTAL_STEPS = 12


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    return make_motion_videos(tmp_path_factory.mktemp("motion"), per_class=4, num_frames=8)


@pytest.fixture(autouse=True)
def one_thread_and_a_time_limit():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)

    def expire(signum, frame):
        raise TimeoutError("ran past 240 s: a hang")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(240)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)
    torch.set_num_threads(threads)


def _weights(model_dir: str | Path) -> dict[str, torch.Tensor]:
    return VideoMAEForPreTraining.from_pretrained(model_dir).state_dict()


def _curve(out: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in read_metrics(out) if r["kind"] == "train"]


def _assert_same_run(result: dict, straight: dict) -> None:
    """Final weights equal bit for bit, and the same loss at every step."""
    assert result["step"] == TOTAL_STEPS and result["epoch"] == 6
    ours, theirs = _weights(result["model_dir"]), straight["weights"]
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        assert torch.equal(ours[key], value), key
    assert _curve(Path(result["output_dir"])) == straight["curve"]


@pytest.fixture(scope="module")
def straight(videos, tmp_path_factory) -> dict:
    """The uninterrupted run every faulty one must reproduce."""
    out = tmp_path_factory.mktemp("straight") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    result = pretrain(data=str(videos), output_dir=str(out), **COMMON)
    torch.set_num_threads(threads)
    assert result["step"] == TOTAL_STEPS
    # One step and its checkpoint, from the last two checkpoints' times. The whole run's time over
    # the steps would count start-up and the curves PNG too (several steps' worth), and a kill
    # that late can miss the run altogether.
    before, last = (path / checkpointing.STATE_NAME for _, path in list_checkpoints(out)[-2:])
    seconds_per_step = max(last.stat().st_mtime - before.stat().st_mtime, 0.01)
    return {"weights": _weights(result["model_dir"]), "curve": _curve(out), "seconds_per_step": seconds_per_step}


# --------------------------------------------------------------------------- kills
def _train_until_killed(data: str, out: str) -> None:
    torch.set_num_threads(1)
    logging.disable(logging.CRITICAL)  # the parent's log handlers are not this process's to write to
    pretrain(data=data, output_dir=out, resume=True, **COMMON)


def _newest_step(out: Path) -> int:
    found = list_checkpoints(out)
    return found[-1][0] if found else 0


def test_killed_three_times_at_random_moments_then_resumed_ends_with_the_same_weights(videos, straight, tmp_path,
                                                                                      caplog):
    """Each attempt is killed after it has written the checkpoint of a random step, at a random
    moment within the next step and a half (in the middle of a step, of the metrics, or of the
    next checkpoint's write); the next attempt resumes. Forked, so no interpreter start-up."""
    out = tmp_path / "run"
    rng = random.Random(20261125)
    targets = sorted(rng.sample(range(1, TOTAL_STEPS - 3), 3))
    context = multiprocessing.get_context("fork")
    killed_at = []
    for target in targets:
        child = context.Process(target=_train_until_killed, args=(str(videos), str(out)))
        child.start()
        deadline = time.monotonic() + 120
        while _newest_step(out) < target and child.is_alive() and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 1.5 * straight["seconds_per_step"]))
        assert child.is_alive(), f"the run ended before the kill (exit code {child.exitcode})"
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        assert child.exitcode == -signal.SIGKILL
        killed_at.append((_newest_step(out), [p.name for p in out.glob(".checkpoint-*")]))
    assert len(killed_at) == 3 and all(step < TOTAL_STEPS for step, _ in killed_at)
    with caplog.at_level(logging.INFO, logger="videomae"):
        result = pretrain(data=str(videos), output_dir=str(out), resume=True, **COMMON)
    assert f"resumed from {out / checkpointing.checkpoint_name(killed_at[-1][0])}" in caplog.text
    assert not list(out.glob(".checkpoint-*"))  # a write the last kill interrupted was cleared
    _assert_same_run(result, straight)


# --------------------------------------------------------------------------- half-written leftovers
def test_half_written_checkpoints_are_never_loaded_and_the_run_says_so(videos, straight, tmp_path, caplog):
    out = tmp_path / "run"
    first = pretrain(data=str(videos), output_dir=str(out), max_steps=4, **COMMON)
    assert [step for step, _ in list_checkpoints(out)] == [3, 4] and first["stopped_early"]
    good = out / "checkpoint-00000004"
    state = (good / "training_state.pt").read_bytes()
    # What a kill during a write leaves: the hidden temporary folder, half of the state in it.
    leftover = out / ".checkpoint-00000005.tmp-k1ll3d"
    leftover.mkdir()
    (leftover / "training_state.pt").write_bytes(state[: len(state) // 2])
    # What a disk error or a partial copy can leave: a complete-looking newest checkpoint that is damaged.
    damaged = out / "checkpoint-00000006"
    shutil.copytree(good, damaged)
    (damaged / "training_state.pt").write_bytes(state[: len(state) // 3])
    # A metrics line cut short.
    with (out / "metrics.jsonl").open("a") as f:
        f.write('{"kind": "train", "loss": 0.5, "st')

    with pytest.raises(ValueError, match="checkpoint-00000006/training_state.pt: not a readable training checkpoint"):
        pretrain(data=str(videos), output_dir=str(out), resume=str(damaged), **COMMON)  # named: never replaced
    with caplog.at_level(logging.INFO, logger="videomae"):
        result = pretrain(data=str(videos), output_dir=str(out), resume=True, **COMMON)
    log = caplog.text
    assert f"ignoring {leftover}: an incomplete checkpoint from an interrupted write (removed)" in log
    assert f"resume: skipping {damaged}, which cannot be read" in log
    assert f"resumed from {good}: step 4" in log
    assert "dropping a damaged line" in log
    assert not leftover.exists()
    _assert_same_run(result, straight)


# --------------------------------------------------------------------------- failed writes
def _fail_third_call(monkeypatch, owner, name: str, torn: bytes, error: BaseException) -> None:
    """Make the third `owner.name(obj, path, ...)` write `torn` bytes to path and raise `error`."""
    real = getattr(owner, name)
    calls = {"n": 0}

    def fake(obj, path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            Path(path).write_bytes(torn)
            raise error
        return real(obj, path, *args, **kwargs)

    monkeypatch.setattr(owner, name, fake)


def _fail_third_torch_save(monkeypatch, error: BaseException) -> None:
    _fail_third_call(monkeypatch, checkpointing.torch, "save", b"PK\x03\x04 a few bytes, then the disk was full", error)


def _fail_third_safetensors_save(monkeypatch, error: BaseException) -> None:
    import videomae.pretrained as pretrained

    _fail_third_call(monkeypatch, pretrained, "save_file", b"\x08\x00", error)


FAILED_WRITES = [
    # torch.save's own words when the disk fills up (seen on a full 64 KiB tmpfs)
    ("full disk, torch.save", _fail_third_torch_save,
     RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534"), "unexpected pos"),
    ("full disk, safetensors", _fail_third_safetensors_save,
     SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)"),
     "No space left on device"),
    ("no permission", _fail_third_torch_save, PermissionError(errno.EACCES, "Permission denied"), "Permission denied"),
]


@pytest.mark.parametrize("case, inject, error, words", FAILED_WRITES, ids=[c[0] for c in FAILED_WRITES])
def test_a_failed_checkpoint_write_stops_the_run_clearly_and_keeps_the_last_checkpoint(videos, straight, tmp_path,
                                                                                       monkeypatch, case, inject,
                                                                                       error, words):
    out = tmp_path / "run"
    inject(monkeypatch, error)
    with pytest.raises(OSError) as info:
        pretrain(data=str(videos), output_dir=str(out), **COMMON)
    message = str(info.value)
    assert f"{out / 'checkpoint-00000003'}: not written" in message and words in message and "MiB free" in message
    assert f"the last checkpoint, {out / 'checkpoint-00000002'}, is intact" in message
    if isinstance(error, OSError):
        assert info.value.errno == error.errno
    assert [step for step, _ in list_checkpoints(out)] == [1, 2]
    assert not list(out.glob(".checkpoint-*"))  # the half-written one is gone
    assert load_checkpoint(out / "checkpoint-00000002")["train_state"]["step"] == 2
    VideoMAEForPreTraining.from_pretrained(out / "checkpoint-00000002" / "model")
    monkeypatch.undo()  # room again
    _assert_same_run(pretrain(data=str(videos), output_dir=str(out), resume=True, **COMMON), straight)


def test_an_output_folder_without_write_permission_fails_before_training(videos, tmp_path):
    out = tmp_path / "locked"
    out.mkdir()
    out.chmod(0o555)
    try:
        if os.access(out, os.W_OK):
            pytest.skip("running as root: a read-only folder is still writable")
        with pytest.raises(PermissionError, match=f"output folder '{out}' is not writable"):
            pretrain(data=str(videos), output_dir=str(out), **COMMON)
    finally:
        out.chmod(0o755)


# --------------------------------------------------------------------------- broken files
def test_ten_percent_broken_videos_train_to_the_end_and_each_is_reported_once(tmp_path, caplog):
    root = make_motion_videos(tmp_path / "data", per_class=9, num_frames=8)
    (root / "list.txt").unlink()
    with_sound = root / "left" / "03.mp4"  # a good video with an audio track is used, not skipped
    write_with_audio(with_sound, np.full((8, 32, 32, 3), 90, np.uint8))
    truncated = root / "left" / "broken_truncated.mp4"
    truncated.write_bytes((root / "left" / "00.mp4").read_bytes()[:700])
    sound_only = write_audio_only(root / "right" / "broken_sound_only.mp4")
    broken = {str(truncated): "not a readable video", str(sound_only): "no video stream"}
    assert len(list(root.rglob("*.mp4"))) == 20
    with caplog.at_level(logging.WARNING, logger="videomae"):
        result = finetune(data=str(root), eval_data=str(root), output_dir=str(tmp_path / "run"), epochs=2,
                          batch_size=5, lr=1e-3, warmup_steps=1, mixup=0.0, cutmix=0.0, num_sample=1,
                          eval_num_clips=1, eval_num_crops=1, **FAST)
    assert result["step"] == 8 and result["epoch"] == 2 and not result["stopped_early"]  # every video, each epoch
    assert set(result["skipped_videos"]) == set(broken)
    for path, reason in broken.items():
        assert reason in result["skipped_videos"][path]
    assert [record["skipped_videos"] for record in result["history"]] == [2, 2]  # each epoch, each file once
    assert set(result["eval"]["skipped_videos"]) == set(broken) and result["eval"]["num_videos"] == 18
    messages = [record.getMessage().strip() for record in caplog.records]
    for path in broken:  # once in each report: two epochs and the evaluation
        assert sum(message.startswith(f"{path}:") for message in messages) == 3, path
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["skipped_videos"] for r in records if r["kind"] == "epoch"] == [2, 2]
    assert str(with_sound) not in result["skipped_videos"]
    model = VideoMAEForVideoClassification.from_pretrained(result["model_dir"])
    assert model.config.id2label == {0: "left", 1: "right"}

