"""Pretraining end to end on tiny models and generated videos: learning, exact resume,
broken videos, outputs, early failures."""

from __future__ import annotations

import json
import math

import pytest
import torch
from train_fixtures import FAST, make_corrupt_videos, make_motion_videos, one_thread  # noqa: F401 (one_thread: autouse fixture)

from videomae import VideoMAEForPreTraining, VideoMAEForVideoClassification
from videomae.train import TrainingDiverged, pretrain
from videomae.train.checkpointing import list_checkpoints, load_checkpoint
from videomae.train.metrics import read_metrics


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    return make_motion_videos(tmp_path_factory.mktemp("motion"), per_class=6)


def _weights(folder):
    return VideoMAEForPreTraining.from_pretrained(folder).state_dict()


def test_pretraining_does_not_flip_by_default_fine_tuning_does(tmp_path):
    """The paper's pretraining flips no frame; its fine-tuning does."""
    from videomae.config import VideoMAEConfig
    from videomae.data import VideoRecord
    from videomae.train import FinetuneOptions, PretrainOptions
    from videomae.train.entrypoints import _train_dataset

    assert PretrainOptions().flip is False and FinetuneOptions().flip is True
    assert PretrainOptions().decoder_mask_ratio == 0.0
    records = [VideoRecord(str(tmp_path / "a.mp4"), 0)]
    config = VideoMAEConfig(image_size=32, patch_size=8)
    dataset = _train_dataset(records, config, PretrainOptions(), torch.device("cpu"))
    assert dataset.flip is False
    with pytest.raises(ValueError, match="decoder_mask_ratio"):
        PretrainOptions(decoder_mask_ratio=0.3).validate()


def test_pretraining_with_v2_decoder_masking_runs_through_the_trainer(videos, tmp_path, monkeypatch):
    seen = []
    forward = VideoMAEForPreTraining.forward

    def spy(self, *args, decoder_masked_pos=None, **kwargs):
        seen.append(None if decoder_masked_pos is None else decoder_masked_pos.float().mean().item())
        return forward(self, *args, decoder_masked_pos=decoder_masked_pos, **kwargs)

    monkeypatch.setattr(VideoMAEForPreTraining, "forward", spy)
    out = tmp_path / "run"
    metrics = pretrain(data=str(videos), output_dir=str(out), epochs=1, max_steps=2, batch_size=4, lr=1e-3,
                       warmup_steps=1, decoder_mask_ratio=0.5, **FAST)
    assert metrics["step"] == 2 and all(math.isfinite(r["loss"]) for r in read_metrics(out) if r["kind"] == "train")
    assert seen == [0.5, 0.5]  # every step's decoder mask drops half the tokens
    assert json.loads((out / "options.json").read_text())["decoder_mask_ratio"] == 0.5


def test_pretraining_loss_decreases_and_outputs_are_written(videos, tmp_path):
    out = tmp_path / "run"
    metrics = pretrain(data=str(videos), output_dir=str(out), epochs=8, batch_size=4, lr=2e-3, warmup_steps=3,
                       num_sample=2, **FAST)
    losses = [r["loss"] for r in read_metrics(out) if r["kind"] == "train"]
    assert len(losses) == metrics["step"] == 24
    assert sum(losses[-4:]) / 4 < 0.9 * sum(losses[:4]) / 4
    assert metrics["epoch"] == 8 and not metrics["stopped_early"] and metrics["skipped_videos"] == {}
    for name in ("options.json", "config.json", "metrics.jsonl", "curves.png", "train.log"):
        assert (out / name).is_file(), name
    assert json.loads((out / "options.json").read_text())["mask_ratio"] == 0.9
    train = [r for r in read_metrics(out) if r["kind"] == "train"]
    assert all(r["clips_per_s"] > 0 and r["lr"] > 0 for r in train)
    # the final model, and each checkpoint's, load with from_pretrained
    model = VideoMAEForPreTraining.from_pretrained(metrics["model_dir"])
    assert model.config.hidden_size == 32 and model.config.num_frames == 4
    (step, last), = list_checkpoints(out)
    assert step == 24 and str(last) == metrics["checkpoint"]
    for key, value in _weights(last / "model").items():
        assert torch.equal(value, model.state_dict()[key]), key
    classifier = VideoMAEForVideoClassification.from_pretrained(last / "model", num_labels=3,
                                                                ignore_mismatched_sizes=True)
    assert classifier.classifier.out_features == 3
    state = load_checkpoint(last)  # weights_only loading
    assert state["train_state"]["step"] == 24 and state["data"]["seed"] == 0
    assert set(state["rng"][0]) >= {"python", "numpy", "torch"}


def test_stopped_and_resumed_run_ends_bit_identical(videos, tmp_path):
    common = dict(data=str(videos), epochs=3, batch_size=4, accum_steps=2, lr=1e-3, warmup_steps=2, num_sample=2,
                  checkpoint_every=2, keep_last=2, **FAST)
    straight = pretrain(output_dir=str(tmp_path / "straight"), **common)
    assert straight["step"] == 9  # 12 videos / 4 per step x 3 epochs
    first = pretrain(output_dir=str(tmp_path / "resumed"), max_steps=5, **common)
    assert first["step"] == 5 and first["stopped_early"]
    steps = [s for s, _ in list_checkpoints(tmp_path / "resumed")]
    assert steps == [4, 5]  # every 2 steps, the stop, and only the last two kept
    resumed = pretrain(output_dir=str(tmp_path / "resumed"), resume=True, **common)
    assert resumed["step"] == 9 and resumed["epoch"] == 3
    assert [r["epoch"] for r in resumed["history"]] == [1, 2]  # continued, did not start over
    assert "resumed from" in (tmp_path / "resumed" / "train.log").read_text()
    a, b = _weights(straight["model_dir"]), _weights(resumed["model_dir"])
    for key in a:
        assert torch.equal(a[key], b[key]), key
    curve_a = [(r["step"], r["loss"]) for r in read_metrics(tmp_path / "straight") if r["kind"] == "train"]
    curve_b = [(r["step"], r["loss"]) for r in read_metrics(tmp_path / "resumed") if r["kind"] == "train"]
    assert curve_a == curve_b
    opt_a = load_checkpoint(straight["checkpoint"])["optimizer"]["state"]
    opt_b = load_checkpoint(resumed["checkpoint"])["optimizer"]["state"]
    assert all(torch.equal(opt_a[k]["exp_avg_sq"], opt_b[k]["exp_avg_sq"]) for k in opt_a)


def test_broken_videos_are_skipped_and_reported_once(videos, tmp_path):
    bad = make_corrupt_videos(tmp_path / "bad", videos / "left" / "00.mp4")
    listing = tmp_path / "list.txt"
    lines = [f"{p} -1" for p in sorted(videos.rglob("*.mp4"))[:6]] + [f"{p} -1" for p in bad.values()]
    listing.write_text("\n".join(lines) + "\n")
    metrics = pretrain(data=str(listing), output_dir=str(tmp_path / "run"), epochs=2, batch_size=3, lr=1e-3,
                       warmup_steps=0, **FAST)
    assert metrics["step"] == 6 and metrics["epoch"] == 2
    assert set(metrics["skipped_videos"]) == {str(p) for p in bad.values()}
    assert "empty" in metrics["skipped_videos"][str(bad["empty"])]
    epochs = [r for r in read_metrics(tmp_path / "run") if r["kind"] == "epoch"]
    assert [r["skipped_videos"] for r in epochs] == [3, 3]  # every epoch, each file once
    log = (tmp_path / "run" / "train.log").read_text()
    assert str(bad["noise"]) in log and "could not be decoded" in log


def test_unwritable_output_folder_fails_before_training(videos, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(PermissionError, match="not writable"):
        pretrain(data=str(videos), output_dir=str(blocker / "run"), epochs=1, batch_size=4, **FAST)


def test_diverging_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(videos, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match="the loss is (nan|inf) at step"):
        pretrain(data=str(videos), output_dir=str(out), epochs=4, batch_size=4, lr=1e30, warmup_steps=0,
                 checkpoint_every=1, **FAST)
    steps = [s for s, _ in list_checkpoints(out)]
    assert steps and all(torch.isfinite(torch.tensor(r["loss"])) for r in read_metrics(out) if r["kind"] == "train")
    VideoMAEForPreTraining.from_pretrained(list_checkpoints(out)[-1][1] / "model")


# --------------------------------------------------------------------------- data that is wrong
def _cli_pretrain(tmp_path, data, **options):
    from videomae.cli import main

    config = tmp_path / "options.json"
    config.write_text(json.dumps({**FAST, "data": str(data), "output_dir": str(tmp_path / "run"), "epochs": 1,
                                  "batch_size": 2, "warmup_steps": 0, **options}))
    return main(["pretrain", "--config", str(config)])


def test_a_wrong_data_root_fails_before_training_naming_the_missing_files(videos, tmp_path, capsys):
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{p.relative_to(videos)} -1\n" for p in sorted(videos.rglob("*.mp4"))[:8]))
    status = _cli_pretrain(tmp_path, listing, data_root=str(tmp_path / "elsewhere"))
    error = capsys.readouterr().err
    assert status == 1
    assert "8 of 8 video(s) do not exist" in error and str(tmp_path / "elsewhere" / "left" / "00.mp4") in error
    assert "left/05.mp4" not in error  # the first five, not all eight
    assert not (tmp_path / "run" / "model").exists() and not (tmp_path / "run" / "metrics.jsonl").exists()


def test_a_first_step_where_every_video_fails_stops_the_run(tmp_path, capsys):
    for i in range(4):
        (tmp_path / "data" / f"{i}.mp4").parent.mkdir(exist_ok=True)
        (tmp_path / "data" / f"{i}.mp4").write_bytes(b"" if i % 2 else b"not a video")
    status = _cli_pretrain(tmp_path, tmp_path / "data", batch_size=4)
    error = capsys.readouterr().err
    assert status == 1
    assert "every video of the first batch (4) failed to decode: not a readable video (2), empty file (2)" in error
    assert not (tmp_path / "run" / "model").exists()


def test_an_epoch_with_more_failures_than_allowed_stops_the_run(videos, tmp_path):
    from videomae.train import TooManyFailedVideos

    bad = make_corrupt_videos(tmp_path / "bad", videos / "left" / "00.mp4")
    listing = tmp_path / "list.txt"
    lines = [f"{p} -1" for p in sorted(videos.rglob("*.mp4"))[:6]] + [f"{p} -1" for p in bad.values()]
    listing.write_text("\n".join(lines) + "\n")
    with pytest.raises(TooManyFailedVideos, match=r"epoch 0: 3 of 9 video\(s\) failed to decode \(33%, more than "
                                                  r"max_failed_fraction 20%\): not a readable video \(2\), empty "
                                                  r"file \(1\)"):
        pretrain(data=str(listing), output_dir=str(tmp_path / "run"), epochs=2, batch_size=3, lr=1e-3,
                 warmup_steps=0, max_failed_fraction=0.2, **FAST)
    assert not (tmp_path / "run" / "model").exists()
    assert [r["kind"] for r in read_metrics(tmp_path / "run")].count("epoch") == 0


def test_targets_are_unnormalised_with_the_runs_statistics(videos, tmp_path, monkeypatch):
    import videomae.modeling

    seen = []

    def spy(*args):
        seen.append(args[-2:])
        return targets(*args)

    targets = videomae.modeling.pretraining_targets
    monkeypatch.setattr(videomae.modeling, "pretraining_targets", spy)
    pretrain(data=str(videos), output_dir=str(tmp_path / "run"), epochs=1, batch_size=4, max_steps=1,
             mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3), **FAST)
    assert seen == [((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))]


def test_pretraining_in_float8_runs_saves_a_plain_model_and_needs_bf16(videos, tmp_path, monkeypatch):
    """float8=True: torchao's FP8 linear layers in the blocks (emulated on the CPU), the loss is
    finite, and the saved model is an ordinary checkpoint."""
    from torchao.float8.float8_linear import Float8Linear as TorchaoFloat8Linear

    import videomae.fp8

    converted = []
    convert = videomae.fp8.convert_for_training

    def counting(model, **kwargs):
        out = convert(model, **kwargs)
        converted.append(sum(isinstance(m, TorchaoFloat8Linear) for m in model.modules()))
        return out

    monkeypatch.setattr(videomae.fp8, "convert_for_training", counting)
    out = tmp_path / "run"
    metrics = pretrain(data=str(videos), output_dir=str(out), epochs=1, max_steps=2, batch_size=4, lr=1e-3,
                       warmup_steps=1, float8=True, **{**FAST, "precision": "bf16"})
    assert metrics["step"] == 2 and all(math.isfinite(r["loss"]) for r in read_metrics(out) if r["kind"] == "train")
    assert "FP8" in (out / "train.log").read_text()
    model = VideoMAEForPreTraining.from_pretrained(metrics["model_dir"])
    assert converted == [4 * 3]  # every linear layer of the blocks: 2 encoder blocks and 1 decoder block, 4 each
    assert not any(isinstance(m, TorchaoFloat8Linear) for m in model.modules())
    with pytest.raises(ValueError, match="bf16"):
        pretrain(data=str(videos), output_dir=str(tmp_path / "fp32"), epochs=1, max_steps=1, batch_size=4,
                 float8=True, **{**FAST, "precision": "fp32"})
