"""Linear probe and k-NN of a frozen encoder: how much its features alone tell the classes.

    train list -> embed_videos (frozen, mean over clips) -> standardise -> linear classifier
    eval list  -> embed_videos -> the same standardisation -> top-1 / top-5
                                                           -> k-NN (cosine, similarity-weighted vote) top-1

The features come from `videomae.pipeline.embed_videos`, the code `videomae embed` runs: the
mean of the encoder's last hidden states (a classifier's pooled fc_norm feature when the
checkpoint is one). Nothing here trains the encoder; the classifier is a single `nn.Linear`
trained full-batch with AdamW for a fixed number of epochs, so a probe run is deterministic
given its seed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_K = 20


@dataclass
class ProbeResult:
    """Accuracies on the eval set. `linear_top5` is top-min(5, classes): with 4 classes it is 1."""

    linear_top1: float
    linear_top5: float
    knn_top1: float
    k: int  # the neighbours used: the k asked for, or the train set's size when it is smaller
    num_train: int
    num_eval: int
    num_classes: int
    feature_dim: int
    features: str  # what the features are ("mean of encoder tokens", "pooled (fc_norm)")

    def as_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- classifiers on features
def standardise(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Each feature to zero mean and unit variance with the train set's statistics, applied to
    every set: the probe's learning rate and weight decay then mean the same for any encoder."""
    mean = train.mean(dim=0)
    std = train.std(dim=0, unbiased=False).clamp_min(1e-6)
    return [(x - mean) / std for x in (train, *others)]


def train_linear(features: torch.Tensor, labels: torch.Tensor, num_classes: int, *, epochs: int = 100,
                 lr: float = 1e-2, weight_decay: float = 1e-2, seed: int = 0) -> nn.Linear:
    """A linear classifier on (N, D) features, full batch (one step an epoch), AdamW.

    The initial weights come from a generator seeded with `seed`, and a full batch has no
    sampling order, so the same inputs give the same classifier."""
    if features.ndim != 2 or features.shape[0] != labels.shape[0]:
        raise ValueError(f"features {tuple(features.shape)} and labels {tuple(labels.shape)}: expected (N, D) and (N,)")
    if epochs < 1:
        raise ValueError(f"epochs {epochs}: expected 1 or more")
    generator = torch.Generator().manual_seed(seed)
    head = nn.Linear(features.shape[1], num_classes)
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=generator) * 0.01)
        head.bias.zero_()
    # weight decay on the weight matrix only, not the bias (as nanoGPT decays only 2-d tensors)
    optimizer = torch.optim.AdamW([{"params": [head.weight], "weight_decay": weight_decay},
                                   {"params": [head.bias], "weight_decay": 0.0}], lr=lr)
    x, y = features.float(), labels.long()
    with torch.enable_grad():
        for _ in range(epochs):
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(head(x), y).backward()
            optimizer.step()
    return head.eval()


def top_k_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    """The fraction of rows whose label is among the k highest logits (k capped at the classes)."""
    k = min(k, logits.shape[1])
    hits = (logits.topk(k, dim=1).indices == labels[:, None]).any(dim=1)
    return int(hits.sum()) / len(labels)  # a Python division: 0.6, not float32's 0.6000000238


def knn_predict(train: torch.Tensor, train_labels: torch.Tensor, queries: torch.Tensor, num_classes: int,
                k: int = DEFAULT_K) -> torch.Tensor:
    """(M,) predicted classes: each query's k most cosine-similar train features vote for their
    label, each vote weighted by its similarity (so a near neighbour counts more than a far one)."""
    k = min(k, train.shape[0])
    similarity = F.normalize(queries.float(), dim=1) @ F.normalize(train.float(), dim=1).T  # (M, N)
    weights, neighbours = similarity.topk(k, dim=1)  # (M, k)
    votes = torch.zeros(queries.shape[0], num_classes)
    votes.scatter_add_(1, train_labels.long()[neighbours], weights)  # (M, C)
    return votes.argmax(dim=1)


def probe_features(train: torch.Tensor, train_labels: torch.Tensor, eval_: torch.Tensor, eval_labels: torch.Tensor,
                   num_classes: int, *, k: int = DEFAULT_K, epochs: int = 100, lr: float = 1e-2,
                   weight_decay: float = 1e-2, seed: int = 0, features: str = "") -> ProbeResult:
    """Linear probe and k-NN on features already extracted."""
    train_std, eval_std = standardise(train, eval_)
    head = train_linear(train_std, train_labels, num_classes, epochs=epochs, lr=lr, weight_decay=weight_decay,
                        seed=seed)
    with torch.no_grad():
        logits = head(eval_std)
    predicted = knn_predict(train, train_labels, eval_, num_classes, k)
    return ProbeResult(
        linear_top1=top_k_accuracy(logits, eval_labels, 1), linear_top5=top_k_accuracy(logits, eval_labels, 5),
        knn_top1=int((predicted == eval_labels).sum()) / len(eval_labels), k=min(k, train.shape[0]),
        num_train=train.shape[0], num_eval=eval_.shape[0], num_classes=num_classes, feature_dim=train.shape[1],
        features=features)


# --------------------------------------------------------------------------- videos to features
def extract_features(paths: Sequence[str | os.PathLike], model: nn.Module, processor, **options) -> torch.Tensor:  # noqa: ANN001
    """(N, D) frozen features of the videos, in order; an error naming the first unreadable one
    (a probe with a video missing from its set would score a different set)."""
    from .pipeline import embed_videos

    rows = []
    for result in embed_videos(paths, model, processor, **options):
        if not result.ok:
            raise ValueError(f"{result.path}: {result.error}")
        rows.append(result.output.float())
    return torch.stack(rows)


def run_probe(model: str, train_data: str | os.PathLike, eval_data: str | os.PathLike, *, k: int = DEFAULT_K,
              epochs: int = 100, lr: float = 1e-2, weight_decay: float = 1e-2, seed: int = 0, num_clips: int = 2,
              sampling_rate: int | None = None, batch_size: int = 8, num_workers: int | None = None,
              device: str = "auto", offline: bool = False, progress: bool | None = False,
              dtype: str = "auto") -> ProbeResult:
    """Probe the encoder of `model` (a folder, hub id or .pth): features of the `train_data`
    videos train the classifier and are the k-NN's memory; `eval_data` is scored. Both are
    `path label` lists or class folders (`videomae.data.datasets.load_records`); the eval set
    uses the train set's class names. `dtype`: the features' precision (auto: bf16 on a GPU and
    on CPUs with bf16 units, as `videomae embed`)."""
    from .data.datasets import load_records
    from .devices import resolve_device
    from .pipeline import load_feature_model, load_processor

    train_records, names = load_records(train_data)
    eval_records, _ = load_records(eval_data, class_names=names)
    net, kind = load_feature_model(model, offline)
    net.to(resolve_device(device)).eval()
    processor = load_processor(model, net.config, offline)
    options = dict(num_clips=num_clips, sampling_rate=sampling_rate, batch_size=batch_size, num_workers=num_workers,
                   progress=progress, dtype=dtype)
    with torch.no_grad():
        train = extract_features([r.path for r in train_records], net, processor, **options)
        eval_ = extract_features([r.path for r in eval_records], net, processor, **options)
    train_labels = torch.tensor([r.label for r in train_records])
    eval_labels = torch.tensor([r.label for r in eval_records])
    num_classes = max(len(names or []), int(train_labels.max()) + 1, int(eval_labels.max()) + 1)
    return probe_features(train.cpu(), train_labels, eval_.cpu(), eval_labels, num_classes, k=k, epochs=epochs,
                          lr=lr, weight_decay=weight_decay, seed=seed, features=kind)


__all__ = ["ProbeResult", "run_probe", "probe_features", "extract_features", "train_linear", "knn_predict",
           "top_k_accuracy", "standardise", "DEFAULT_K"]
