"""Two processes (torchrun, gloo on CPU) give the run one process gives with the same global
batch: same loss curve, same weights, same evaluation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from train_fixtures import FAST, free_port, make_motion_videos

from videomae import VideoMAEConfig, VideoMAEForPreTraining, VideoMAEForVideoClassification
from videomae.train import evaluate, pretrain
from videomae.train.metrics import read_metrics


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_two_gloo_processes_equal_one_process(tmp_path):
    videos = make_motion_videos(tmp_path / "videos", per_class=6)
    (tmp_path / "broken.mp4").write_bytes(b"")  # outside the pretraining folder
    lines = (videos / "list.txt").read_text().splitlines()[:7] + [f"{tmp_path / 'broken.mp4'} 1"]
    (videos / "seven.txt").write_text("".join(line + "\n" for line in lines))
    classifier = VideoMAEForVideoClassification(VideoMAEConfig.from_preset(
        "small", **FAST["config_overrides"], num_labels=2))
    classifier.save_pretrained(tmp_path / "classifier")
    train = dict(data=str(videos), epochs=2, batch_size=4, lr=2e-3, warmup_steps=1, num_sample=2, **FAST)
    evaluation = dict(model=str(tmp_path / "classifier"), data=str(videos / "seven.txt"), device="cpu",
                      num_workers=0, progress=False, sampling_rate=2, eval_num_clips=2, eval_num_crops=2,
                      eval_batch_size=2)
    job = {"pretrain": dict(train, output_dir=str(tmp_path / "two")),
           "evaluate": dict(evaluation, output_dir=str(tmp_path / "two_eval")),
           "result": str(tmp_path / "two.json")}
    (tmp_path / "job.json").write_text(json.dumps(job))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    script = Path(__file__).with_name("train_fixtures.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
           str(free_port()), str(script), str(tmp_path / "job.json")]
    # Its own process group: if the run hangs, the timeout kills torchrun *and* its workers,
    # so no orphan is left waiting on a peer.
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, stderr = proc.communicate()
        pytest.fail(f"2-process run did not finish in 240 s: {stderr[-3000:]}")
    assert proc.returncode == 0, stderr[-3000:]
    two = json.loads((tmp_path / "two.json").read_text())

    one = pretrain(output_dir=str(tmp_path / "one"), **train)
    one_eval = evaluate(output_dir=str(tmp_path / "one_eval"), **evaluation)

    assert two["pretrain"]["step"] == one["step"] == 6
    curve_one = [r["loss"] for r in read_metrics(tmp_path / "one") if r["kind"] == "train"]
    curve_two = [r["loss"] for r in read_metrics(tmp_path / "two") if r["kind"] == "train"]
    np.testing.assert_allclose(curve_two, curve_one, rtol=1e-5)
    a = VideoMAEForPreTraining.from_pretrained(one["model_dir"]).state_dict()
    b = VideoMAEForPreTraining.from_pretrained(two["pretrain"]["model_dir"]).state_dict()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < 1e-5, worst
    # evaluation: 8 videos (one broken) over 2 processes: every video counted once, same scores
    assert two["evaluate"]["num_videos"] == one_eval["num_videos"] == 7
    assert two["evaluate"]["confusion_matrix"] == one_eval["confusion_matrix"]
    assert list(two["evaluate"]["skipped_videos"]) == list(one_eval["skipped_videos"]) == [str(tmp_path / "broken.mp4")]
    assert two["evaluate"]["loss"] == pytest.approx(one_eval["loss"], rel=1e-5)
    log = (tmp_path / "two" / "train.log").read_text()
    assert "2 process(es) x 2 per device x 1 accumulation = batch 4" in log
    assert log.count("epoch 1: loss") == 1  # only rank 0 logs
