"""Fine-tuning and evaluation end to end: a learnable motion task, the multi-view protocol,
the per-class report, and exact resume with Mixup / CutMix and drop path on."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from train_fixtures import FAST, make_motion_videos, one_thread  # noqa: F401 (one_thread: autouse fixture)

from videomae import VideoMAEConfig, VideoMAEForVideoClassification
from videomae.train import evaluate, finetune, pretrain
from videomae.train.engine import classification_metrics
from videomae.train.metrics import read_metrics


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    return make_motion_videos(tmp_path_factory.mktemp("motion"), per_class=8)


def test_finetuning_learns_the_direction_of_motion(videos, tmp_path):
    # Flipping would swap the classes (left <-> right), so it is off, as for Something-Something.
    # RandAugment and erasing are off too: on 16 tiny videos they keep train accuracy noisy.
    metrics = finetune(data=str(videos), eval_data=str(videos / "list.txt"), output_dir=str(tmp_path / "ft"),
                       epochs=10, batch_size=8, lr=3e-3, warmup_steps=2, mixup=0.0, cutmix=0.0, label_smoothing=0.0,
                       drop_path=0.0, layer_decay=1.0, flip=False, num_sample=2, eval_num_clips=2,
                       eval_num_crops=1, rand_augment=None, random_erasing=0.0, **FAST)
    accs = [r["train_acc"] for r in metrics["history"]]
    assert accs[0] <= 0.75 and min(accs[-3:]) >= 0.9, accs
    assert metrics["eval"]["top1"] >= 0.9 and metrics["eval"]["num_videos"] == 16
    model = VideoMAEForVideoClassification.from_pretrained(metrics["model_dir"])
    assert model.config.id2label == {0: "left", 1: "right"} and model.config.use_mean_pooling
    assert (tmp_path / "ft" / "model" / "preprocessor_config.json").is_file()
    for name in ("eval_metrics.json", "eval_per_class.json", "eval_confusion_matrix.npy", "curves.png"):
        assert (tmp_path / "ft" / name).is_file(), name
    assert any(r["kind"] == "eval" for r in read_metrics(tmp_path / "ft"))


def test_evaluate_averages_views_per_video_and_reports_per_class(videos, tmp_path):
    config = dict(FAST["config_overrides"], num_labels=2, id2label={0: "left", 1: "right"})
    from videomae import VideoMAEConfig

    model = VideoMAEForVideoClassification(VideoMAEConfig.from_preset("small", **config))
    model.save_pretrained(tmp_path / "model")
    options = dict(FAST)
    for key in ("model", "config_overrides", "short_side", "log_every"):
        options.pop(key)
    metrics = evaluate(model=str(tmp_path / "model"), data=str(videos), output_dir=str(tmp_path / "eval"),
                       eval_num_clips=3, eval_num_crops=2, eval_batch_size=3, **options)
    assert metrics["num_videos"] == 16 and metrics["num_views"] == 6
    assert metrics["top5"] == 1.0  # two classes: always in the top five
    confusion = np.load(tmp_path / "eval" / "confusion_matrix.npy")
    assert confusion.sum() == 16 and confusion.sum(axis=1).tolist() == [8, 8]
    assert metrics["top1"] == pytest.approx(np.trace(confusion) / 16)
    per_class = json.loads((tmp_path / "eval" / "per_class.json").read_text())
    assert [(p["name"], p["support"]) for p in per_class] == [("left", 8), ("right", 8)]
    assert json.loads((tmp_path / "eval" / "confusion_matrix.json").read_text())["labels"] == ["left", "right"]
    # the same numbers by hand: softmax of every view, averaged per video, then ranked
    from videomae.data import MultiViewDataset, load_records
    from videomae.train.engine import to_model_input

    records, _ = load_records(videos, labeled=True)
    views = MultiViewDataset(records, 4, 2, 32, num_clips=3, num_crops=2)
    model.eval()
    probs = []
    with torch.no_grad():
        for i in range(len(views)):
            pixels = to_model_input(views[i]["pixel_values"], torch.device("cpu"), options["mean"] if "mean" in
                                    options else (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
            probs.append(model(pixels).logits.softmax(-1).mean(0).numpy())
    by_hand = classification_metrics(np.stack(probs), np.array([r.label for r in records]), 2)
    assert by_hand["top1"] == pytest.approx(metrics["top1"])
    assert by_hand["loss"] == pytest.approx(metrics["loss"], rel=1e-5)


def test_classification_metrics_per_class_and_top5():
    probs = np.array([[0.1, 0.2, 0.3, 0.25, 0.05, 0.05, 0.05],
                      [0.5, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05],
                      [0.0, 0.0, 0.1, 0.1, 0.1, 0.1, 0.6]])
    labels = np.array([5, 0, 6])
    metrics = classification_metrics(probs, labels, 7, {0: "a"})
    assert metrics["top1"] == pytest.approx(2 / 3) and metrics["top5"] == pytest.approx(2 / 3)
    assert metrics["per_class"][0] == {"class": 0, "name": "a", "accuracy": 1.0, "support": 1}
    assert metrics["per_class"][5]["accuracy"] == 0.0 and metrics["per_class"][1]["accuracy"] is None
    assert metrics["confusion"][5, 2] == 1 and metrics["mean_class_acc"] == pytest.approx(2 / 3)


def test_finetune_from_a_pretraining_checkpoint_resumes_exactly_with_mixup_and_drop_path(videos, tmp_path):
    pre = pretrain(data=str(videos), output_dir=str(tmp_path / "pre"), epochs=1, batch_size=8, warmup_steps=0,
                   **FAST)
    common = dict(data=str(videos / "list.txt"), init_from=pre["model_dir"], epochs=2, batch_size=4, lr=1e-3,
                  warmup_steps=1, drop_path=0.2, checkpoint_every=100, **FAST)
    straight = finetune(output_dir=str(tmp_path / "a"), **common)
    finetune(output_dir=str(tmp_path / "b"), max_steps=3, **common)
    resumed = finetune(output_dir=str(tmp_path / "b"), resume=str(tmp_path / "b" / "checkpoint-00000003"), **common)
    assert straight["step"] == resumed["step"] == 8
    a = VideoMAEForVideoClassification.from_pretrained(straight["model_dir"]).internal_state_dict()
    b = VideoMAEForVideoClassification.from_pretrained(resumed["model_dir"]).internal_state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    encoder = VideoMAEForVideoClassification.from_pretrained(pre["model_dir"], num_labels=2,
                                                             ignore_mismatched_sizes=True).internal_state_dict()
    # the pretrained encoder was the starting point: 8 AdamW steps of lr 1e-3 move each weight by a few 1e-3
    # (Adam's step is about lr), while another initialisation is far away
    moved = (a["videomae.blocks.0.attn.qkv.weight"] - encoder["videomae.blocks.0.attn.qkv.weight"]).abs().max()
    assert 0 < moved < 8 * 1e-3 * 3
    fresh = VideoMAEForVideoClassification(VideoMAEConfig.from_preset("small", **FAST["config_overrides"]))
    qkv = "videomae.blocks.0.attn.qkv.weight"
    assert (fresh.internal_state_dict()[qkv] - encoder[qkv]).abs().max() > 0.1
    assert [r["step"] for r in read_metrics(tmp_path / "a") if r["kind"] == "train"] == list(range(1, 9))


def test_finetuning_starts_from_ours_transformers_or_original_checkpoints(tmp_path):
    from original_layout import pretraining_shapes, random_state

    from videomae import VideoMAEForPreTraining
    from videomae.train.entrypoints import build_model
    from videomae.train.options import FinetuneOptions

    tiny = FAST["config_overrides"]
    # an original MCG-NJU pretraining checkpoint: its key names typed out, not written by our to_original
    original = random_state(pretraining_shapes(dim=32, depth=2, mlp=64, dec_dim=32, dec_depth=1, dec_mlp=64,
                                               num_patches=32, patch=8))
    torch.save({"model": original, "epoch": 799}, tmp_path / "original.pth")
    pre = VideoMAEForPreTraining.from_pretrained(tmp_path / "original.pth", num_frames=4, image_size=32,
                                                 num_attention_heads=2, decoder_num_attention_heads=2)
    assert pre.config.to_dict() == {**pre.config.to_dict(), **tiny, "use_mean_pooling": False}
    pre.save_pretrained(tmp_path / "run" / "model")  # transformers' layout, inside a run folder
    encoder = {"videomae." + k[len("encoder."):]: v for k, v in original.items()
               if k.startswith("encoder.") and not k.endswith("pos_embed") and not k.startswith("encoder.norm.")}
    assert len(encoder) == 2 + 2 * 13
    heads = dict(num_attention_heads=2)  # an original checkpoint stores no head count
    for source in (tmp_path / "run", tmp_path / "run" / "model", tmp_path / "original.pth"):
        options = FinetuneOptions(init_from=str(source), drop_path=0.1, config_overrides=heads)
        model = build_model(VideoMAEForVideoClassification, options, {"num_labels": 3, "drop_path_rate": 0.1,
                                                                      "use_mean_pooling": True},
                            ignore_mismatched_sizes=True)
        assert model.config.num_labels == 3 and model.config.drop_path_rate == 0.1
        state = model.internal_state_dict()
        assert all(torch.equal(state[k], v) for k, v in encoder.items()), source
