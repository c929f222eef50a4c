"""Training on CUDA (skipped without it): bf16 and fp16 (loss scaling) autocast, fused AdamW,
torch.compile, and an exact resume of the CUDA random streams."""

from __future__ import annotations

import pytest
import torch
from train_fixtures import FAST, make_motion_videos

from videomae import VideoMAEForPreTraining
from videomae.train import finetune, pretrain
from videomae.train.checkpointing import load_checkpoint
from videomae.train.metrics import read_metrics

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
GPU = dict(FAST, device="cuda")


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    return make_motion_videos(tmp_path_factory.mktemp("motion"), per_class=6)


@pytest.mark.parametrize("precision, compile", [("bf16", False), ("fp16", False), ("bf16", True)])
def test_pretraining_on_cuda(videos, tmp_path, precision, compile):
    options = dict(GPU, precision=precision)
    metrics = pretrain(data=str(videos), output_dir=str(tmp_path), epochs=4, batch_size=4, lr=2e-3,
                       warmup_steps=2, compile=compile, **options)
    losses = [r["loss"] for r in read_metrics(tmp_path) if r["kind"] == "train"]
    assert len(losses) == 12 and all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-3:]) < sum(losses[:3])
    state = load_checkpoint(metrics["checkpoint"])
    assert ("scale" in state["scaler"]) == (precision == "fp16")  # loss scaling only for fp16
    assert "cuda" in state["rng"][0]
    assert not any(k.startswith("_orig_mod") for k in state["model"])  # the unwrapped model is saved
    VideoMAEForPreTraining.from_pretrained(metrics["model_dir"])


def test_fused_adamw_and_exact_resume_on_cuda(videos, tmp_path):
    common = dict(data=str(videos / "list.txt"), epochs=2, batch_size=4, lr=1e-3, warmup_steps=1, drop_path=0.2,
                  checkpoint_every=100, **dict(GPU, precision="bf16"))
    straight = finetune(output_dir=str(tmp_path / "a"), **common)
    finetune(output_dir=str(tmp_path / "b"), max_steps=2, **common)
    resumed = finetune(output_dir=str(tmp_path / "b"), resume=True, **common)
    a = load_checkpoint(straight["checkpoint"])
    b = load_checkpoint(resumed["checkpoint"])
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["optimizer"]["param_groups"][0]["fused"] is True
