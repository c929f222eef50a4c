"""`videomae.probe`: the classifier parts on made-up features (no video), and `videomae probe`
end to end on a few tiny generated videos and a tiny random model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from videomae import VideoMAEConfig, VideoMAEForPreTraining
from videomae.probe import knn_predict, probe_features, standardise, top_k_accuracy, train_linear
from videomae.processing import VideoMAEImageProcessor

from train_fixtures import TINY_CONFIG, make_motion_videos


def separable(num_classes: int = 5, per_class: int = 20, dim: int = 16, seed: int = 0) -> tuple:
    """Gaussian clusters around far-apart class centres: (features, labels)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_classes, dim, generator=g) * 5
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    return centres[labels] + torch.randn(len(labels), dim, generator=g), labels


def test_separable_features_are_probed_perfectly() -> None:
    train, train_labels = separable(seed=0)
    eval_, eval_labels = separable(seed=0, per_class=10)  # same centres (seed), other points
    eval_ = eval_ + 0.1 * torch.randn(eval_.shape, generator=torch.Generator().manual_seed(1))
    result = probe_features(train, train_labels, eval_, eval_labels, num_classes=5, k=20, epochs=100)
    assert result.linear_top1 == pytest.approx(1.0)
    assert result.linear_top5 == pytest.approx(1.0)
    assert result.knn_top1 == pytest.approx(1.0)
    assert (result.k, result.num_train, result.num_eval, result.num_classes, result.feature_dim) == (20, 100, 50, 5,
                                                                                                       16)


def test_random_labels_stay_near_chance() -> None:
    train, _ = separable(seed=0)
    eval_, _ = separable(seed=0, per_class=40)
    g = torch.Generator().manual_seed(3)
    result = probe_features(train, torch.randint(0, 5, (100,), generator=g), eval_,
                            torch.randint(0, 5, (200,), generator=g), num_classes=5)
    assert result.linear_top1 < 0.4 and result.knn_top1 < 0.4  # chance is 0.2


def test_linear_probe_is_deterministic_given_the_seed() -> None:
    x, y = separable()
    a, b = train_linear(x, y, 5, epochs=20, seed=7), train_linear(x, y, 5, epochs=20, seed=7)
    torch.testing.assert_close(a.weight, b.weight, rtol=0, atol=0)
    assert not torch.equal(a.weight, train_linear(x, y, 5, epochs=20, seed=8).weight)


def test_standardise_uses_the_train_statistics() -> None:
    train = torch.tensor([[0.0, 10.0], [2.0, 30.0]])
    train_std, other = standardise(train, torch.tensor([[1.0, 20.0], [3.0, 40.0]]))
    torch.testing.assert_close(train_std, torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))
    torch.testing.assert_close(other, torch.tensor([[0.0, 0.0], [2.0, 2.0]]))


def test_top_k_accuracy() -> None:
    logits = torch.tensor([[0.9, 0.1, 0.0], [0.1, 0.2, 0.7], [0.5, 0.4, 0.1]])
    labels = torch.tensor([0, 1, 2])
    assert top_k_accuracy(logits, labels, 1) == pytest.approx(1 / 3)
    assert top_k_accuracy(logits, labels, 2) == pytest.approx(2 / 3)
    assert top_k_accuracy(logits, labels, 5) == pytest.approx(1.0)  # k capped at the 3 classes


def test_knn_votes_are_weighted_by_similarity() -> None:
    # One close neighbour of class 0 against two distant ones of class 1: an unweighted vote of
    # the 3 nearest says 1, the similarity-weighted vote says 0.
    train = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.05, 1.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 2])
    query = torch.tensor([[1.0, 0.3]])  # cosine 0.96 to the first, about 0.29 and 0.33 to the next two
    assert knn_predict(train, labels, query, num_classes=3, k=3).tolist() == [0]
    assert knn_predict(train, labels, torch.tensor([[0.0, 1.0]]), num_classes=3, k=3).tolist() == [1]
    # k larger than the train set: all four vote, no error
    assert knn_predict(train, labels, torch.tensor([[-1.0, 0.1]]), num_classes=3, k=50).tolist() == [2]


def test_probe_command_end_to_end(tmp_path: Path) -> None:
    data = make_motion_videos(tmp_path / "videos", per_class=3, num_frames=12)
    torch.manual_seed(0)
    model = tmp_path / "model"
    VideoMAEForPreTraining(VideoMAEConfig(**TINY_CONFIG)).save_pretrained(model)
    VideoMAEImageProcessor(size={"shortest_edge": 32}, crop_size=32).save_pretrained(model)
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore")
    result = subprocess.run(
        [sys.executable, "-m", "videomae", "probe", "--model", str(model), "--train-data", str(data / "list.txt"),
         "--eval-data", str(data), "--k", "20", "--num-clips", "2", "--epochs", "50", "--num-workers", "0",
         "--sampling-rate", "2", "--no-progress", "--dtype", "float32"],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert set(metrics) == {"linear_top1", "linear_top5", "knn_top1", "k", "num_train", "num_eval", "num_classes",
                            "feature_dim", "features"}
    for key in ("linear_top1", "linear_top5", "knn_top1"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["linear_top5"] == 1.0  # 2 classes: top-2
    # the eval set is the train set (class folders), so the train features are in the k-NN memory
    assert (metrics["k"], metrics["num_train"], metrics["num_eval"], metrics["num_classes"]) == (6, 6, 6, 2)
    assert metrics["feature_dim"] == TINY_CONFIG["hidden_size"]
    assert metrics["features"] == "mean of encoder tokens"
