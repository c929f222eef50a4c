"""The training and evaluation loops, shared by pretraining and fine-tuning.

`train_one_epoch` runs optimizer steps (with gradient accumulation) until the epoch or
`max_steps` ends; the task (pretraining or classification) is the `loss_fn` it is given.
`evaluate` scores every view of every video and averages the softmax per video, exactly,
whatever process each view was computed on.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from . import distributed as dist_utils
from .distributed import DistInfo
from .failures import FailureLedger
from .optim import CosineSchedule

logger = logging.getLogger(__name__)

Batch = dict[str, Any]
# loss_fn(model, batch, state) -> (mean loss over the batch, number of clips, correct predictions as a
# 0-d tensor, or None when there are no labels)
LossFn = Callable[[nn.Module, Batch, "TrainState"], tuple[torch.Tensor, int, torch.Tensor | None]]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainState:
    """Where training is: what a checkpoint must hold to continue exactly."""

    epoch: int = 0
    step: int = 0  # optimizer steps done
    epoch_batches: int = 0  # micro-batches of `epoch` already consumed (per process)

    def to_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "step": self.step, "epoch_batches": self.epoch_batches}


@dataclass
class Loop:
    """Everything the training loop needs, wired by the entry point."""

    model: nn.Module  # as trained (DDP-wrapped and/or compiled)
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    schedule: CosineSchedule
    batches: Iterator[Batch]  # micro-batches of the whole run, epoch after epoch (one iterator)
    dist: DistInfo
    loss_fn: LossFn
    steps_per_epoch: int
    accum_steps: int = 1
    max_steps: int | None = None
    clip_grad: float | None = None
    autocast_dtype: torch.dtype | None = None
    mean: tuple[float, ...] = IMAGENET_DEFAULT_MEAN
    std: tuple[float, ...] = IMAGENET_DEFAULT_STD
    log_every: int = 10
    progress: bool = True
    on_step: Callable[[TrainState], None] | None = None  # checkpointing, called after every step
    due: Callable[[TrainState], bool] | None = None  # whether on_step will write at this state
    on_log: Callable[[dict[str, Any]], None] | None = None  # metrics records (rank 0)
    failures: FailureLedger = field(default_factory=FailureLedger)  # videos tried / failed, this epoch, this process
    bar: Any = None  # a progress bar over the whole run (its ETA is the run's); None: one per epoch


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def to_model_input(pixels: torch.Tensor | Sequence[torch.Tensor], device: torch.device, mean: tuple[float, ...],
                   std: tuple[float, ...]) -> torch.Tensor:
    """uint8 clips (..., T, C, H, W), or a list of such chunks, -> normalised float32 on `device`
    (chunks are copied one by one and joined there, so only bytes cross to the GPU, once)."""
    from ..transforms import rescale_and_normalize

    if isinstance(pixels, torch.Tensor):
        pixels = pixels.to(device, non_blocking=True)
    elif len(pixels) == 1:
        pixels = pixels[0].to(device, non_blocking=True)
    else:
        pixels = torch.cat([chunk.to(device, non_blocking=True) for chunk in pixels])
    return rescale_and_normalize(pixels, 1 / 255, mean, std)


@dataclass
class _Pending:
    """One finished optimizer step whose sums are still on the device."""

    step: int
    epoch: int
    epoch_batches: int
    lr: float
    sums: torch.Tensor  # loss * clips, clips, correct, labelled (all-reduced, on the device)
    grad_norm: torch.Tensor | None
    data_wait: float  # seconds this step's micro-batches were waited for
    step_time: float  # seconds from the previous step's end to this one's (host clock)


def train_one_epoch(loop: Loop, state: TrainState) -> tuple[dict[str, float], bool]:
    """Train from `state` to the end of `state.epoch` (or to `max_steps`).

    The host never waits for the device inside a step: a step's loss is read back one step
    later (the device is busy with the next step by then), or at once where a log record or a
    checkpoint needs it, so a checkpoint is never written after a step whose loss is not
    finite. The time spent waiting for batches is measured: `data_share` in the metrics is
    that wait over the wall time of the steps (0 when loading keeps up).

    Returns the epoch's averaged metrics and whether training should stop (max_steps).
    """
    model, optimizer, device = loop.model, loop.optimizer, loop.dist.device
    accum = loop.accum_steps
    total_micro = loop.steps_per_epoch * accum
    remaining = total_micro - state.epoch_batches
    model.train()
    bar, own_bar = loop.bar, False
    if bar is None and loop.progress and loop.dist.is_main:
        from tqdm.auto import tqdm

        bar, own_bar = tqdm(total=loop.steps_per_epoch, initial=state.epoch_batches // accum, unit="step",
                            dynamic_ncols=True, leave=False), True
    if bar is not None:
        bar.set_description(f"epoch {state.epoch}")
    keys = ("loss", "clips", "correct", "labelled", "data_wait", "time")
    totals = dict.fromkeys(keys, 0.0)
    window = dict.fromkeys(keys, 0.0)
    speed: float | None = None
    pending: list[_Pending] = []

    def settle(upto: int) -> None:
        """Read back the steps up to `upto` (waits for the device), check and report them."""
        nonlocal speed, window
        while pending and pending[0].step <= upto:
            done = pending.pop(0)
            loss_sum, clips_all, correct_all, labelled_all = done.sums.tolist()
            loop.failures.after_step(clips_all)  # the run's first step: stop if every video failed
            step_loss = loss_sum / clips_all if clips_all else float("nan")
            if not math.isfinite(step_loss) and clips_all:
                if own_bar:
                    bar.close()
                raise TrainingDiverged(
                    f"the loss is {step_loss} at step {done.step} (epoch {done.epoch}); training stopped, the last "
                    f"checkpoint written before this step is intact. Lower the learning rate, enable clip_grad, or "
                    f"use bf16 rather than fp16")
            for acc in (totals, window):
                acc["loss"] += loss_sum
                acc["clips"] += clips_all
                acc["correct"] += correct_all
                acc["labelled"] += labelled_all
                acc["data_wait"] += done.data_wait
                acc["time"] += done.step_time
            rate = clips_all / done.step_time if done.step_time > 0 else 0.0
            speed = rate if speed is None else 0.9 * speed + 0.1 * rate  # smoothed clips/s
            if bar is not None:
                bar.set_postfix(loss=f"{step_loss:.4f}", lr=f"{done.lr:.2e}", clips_s=f"{speed:.1f}", refresh=False)
                bar.update(1)  # tqdm adds the elapsed time and the ETA
            if done.step % loop.log_every == 0 or done.epoch_batches == total_micro:
                record = {"step": done.step, "epoch": done.epoch, "lr": done.lr, "loss": step_loss,
                          "window_loss": window["loss"] / max(window["clips"], 1),
                          "clips_per_s": window["clips"] / window["time"] if window["time"] > 0 else None,
                          "data_share": window["data_wait"] / window["time"] if window["time"] > 0 else None}
                if window["labelled"]:
                    record["train_acc"] = window["correct"] / window["labelled"]
                if done.grad_norm is not None:
                    record["grad_norm"] = float(done.grad_norm)
                if loop.on_log is not None:
                    loop.on_log(record)
                window = dict.fromkeys(keys, 0.0)

    # loss * clips, clips, correct, labelled of this step, summed on the device
    sums = torch.zeros(4, dtype=torch.float64, device=device)
    stop = False
    micro = 0
    data_wait = 0.0
    step_start = time.perf_counter()
    while micro < remaining:
        waited = time.perf_counter()
        batch = next(loop.batches)
        data_wait += time.perf_counter() - waited
        micro += 1
        loop.failures.add(batch)
        batch["pixel_values"] = to_model_input(batch["pixel_values"], device, loop.mean, loop.std)
        last_micro = micro % accum == 0
        sync = contextlib.nullcontext()
        if loop.dist.distributed and not last_micro and hasattr(model, "no_sync"):
            sync = model.no_sync()
        with sync:
            with autocast(device, loop.autocast_dtype):
                loss, clips, correct = loop.loss_fn(model, batch, state)
            weight = batch.get("weight", 1.0)
            loop.scaler.scale(loss * (weight / accum)).backward()
        if weight:
            sums[0] += loss.detach().double() * clips
            sums[1] += clips
            if correct is not None:
                sums[2] += correct
                sums[3] += clips
        if not last_micro:
            continue
        lr = loop.schedule.apply(optimizer, state.step)
        grad_norm = None
        if loop.clip_grad is not None:
            loop.scaler.unscale_(optimizer)
            grad_norm = nn.utils.clip_grad_norm_(model.parameters(), loop.clip_grad).detach()
        loop.scaler.step(optimizer)
        loop.scaler.update()
        optimizer.zero_grad(set_to_none=True)
        state.step += 1
        state.epoch_batches += accum
        pending.append(_Pending(state.step, state.epoch, state.epoch_batches, lr, dist_utils.all_reduce_sum_async(sums),
                                grad_norm, data_wait, time.perf_counter() - step_start))
        sums = torch.zeros_like(sums)
        data_wait = 0.0
        # The previous step is done or nearly (this one is queued behind it): read it now. Read
        # this one too where a log record or a checkpoint is due, or the epoch / run ends.
        last = state.epoch_batches == total_micro or (loop.max_steps is not None and state.step >= loop.max_steps)
        must = last or state.step % loop.log_every == 0 or (loop.due is not None and loop.due(state))
        settle(state.step if must else state.step - 1)
        if loop.on_step is not None:
            loop.on_step(state)
        step_start = time.perf_counter()  # checkpoint writing is not training time
        if loop.max_steps is not None and state.step >= loop.max_steps:
            stop = True
            break
    settle(state.step)
    if own_bar:
        bar.close()
    stats = {"loss": totals["loss"] / max(totals["clips"], 1), "clips": totals["clips"],
             "data_share": totals["data_wait"] / totals["time"] if totals["time"] > 0 else None}
    if totals["labelled"]:
        stats["train_acc"] = totals["correct"] / totals["labelled"]
    return stats, stop


def gather_failures(local: dict[str, str]) -> dict[str, str]:
    """Every process's failed videos, each once (path -> first reason)."""
    merged: dict[str, str] = {}
    for part in dist_utils.all_gather_objects(dict(local)):
        for path, reason in part.items():
            merged.setdefault(path, reason)
    return dict(sorted(merged.items()))


def report_failures(failures: dict[str, str], where: str) -> None:
    if not failures:
        return
    logger.warning("%s: skipped %d video(s) that could not be decoded:", where, len(failures))
    for path, reason in failures.items():
        logger.warning("  %s: %s", path, reason)


# --------------------------------------------------------------------------- evaluation
@dataclass
class EvalResult:
    """Per-video averaged class probabilities and the labels, for every video once."""

    indices: np.ndarray  # (N,) dataset indices, sorted
    probs: np.ndarray  # (N, K) mean softmax over views
    labels: np.ndarray  # (N,)
    failures: dict[str, str]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    dist: DistInfo,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    autocast_dtype: torch.dtype | None = None,
    view_chunk: int = 64,
    progress: bool = True,
) -> EvalResult:
    """Multi-view evaluation (the paper's protocol): the softmax of every clip x crop view of a
    video is averaged, then ranked. Each video's views are scored by one process; the per-video
    scores are gathered, so accuracy is exact whatever the number of processes."""
    model.eval()
    device = dist.device
    local: list[tuple[int, np.ndarray, int]] = []
    failures: dict[str, str] = {}
    bar = None
    if progress and dist.is_main:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(loader), desc="evaluating", unit="batch", dynamic_ncols=True, leave=False)
    for batch in loader:
        for path, reason in batch.get("failures", []):
            failures.setdefault(path, reason)
        views = batch["pixel_values"]  # (B, V, T, C, H, W) uint8
        if views.shape[0]:
            b, v = views.shape[:2]
            flat = views.reshape(b * v, *views.shape[2:])
            probs = []
            for start in range(0, flat.shape[0], view_chunk):
                pixels = to_model_input(flat[start:start + view_chunk], device, mean, std)
                with autocast(device, autocast_dtype):
                    logits = model(pixels).logits
                probs.append(torch.softmax(logits.float(), dim=-1).cpu())
            per_video = torch.cat(probs).reshape(b, v, -1).mean(dim=1)  # (B, K)
            for i, index in enumerate(batch["index"].tolist()):
                local.append((index, per_video[i].numpy(), int(batch["labels"][i])))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    seen: dict[int, tuple[np.ndarray, int]] = {}
    for part in dist_utils.all_gather_objects(local):
        for index, probs_i, label in part:
            seen.setdefault(index, (probs_i, label))  # padding repeats a video: keep it once
    merged_failures = gather_failures(failures)
    order = sorted(seen)
    if order:
        probs_all = np.stack([seen[i][0] for i in order])
    else:
        probs_all = np.zeros((0, 0), dtype=np.float32)
    labels_all = np.array([seen[i][1] for i in order], dtype=np.int64)
    return EvalResult(np.array(order, dtype=np.int64), probs_all, labels_all, merged_failures)


def classification_metrics(probs: np.ndarray, labels: np.ndarray, num_classes: int,
                           names: dict[int, str] | None = None) -> dict[str, Any]:
    """Top-1 / top-5 accuracy, mean-class accuracy, per-class accuracy and support, and the
    confusion matrix (rows: true class, columns: predicted)."""
    n = len(labels)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    if n == 0:
        return {"top1": float("nan"), "top5": float("nan"), "num_videos": 0, "confusion": confusion,
                "per_class": [], "mean_class_acc": float("nan"), "loss": float("nan")}
    k = min(5, probs.shape[1])
    ranked = np.argsort(-probs, axis=1, kind="stable")
    top1 = ranked[:, 0] == labels
    top5 = (ranked[:, :k] == labels[:, None]).any(axis=1)
    np.add.at(confusion, (labels, ranked[:, 0]), 1)
    support = confusion.sum(axis=1)
    per_class = []
    for c in range(num_classes):
        acc = float(confusion[c, c] / support[c]) if support[c] else None
        per_class.append({"class": c, "name": (names or {}).get(c, str(c)), "accuracy": acc,
                          "support": int(support[c])})
    accs = [p["accuracy"] for p in per_class if p["accuracy"] is not None]
    loss = float(-np.log(np.clip(probs[np.arange(n), labels], 1e-12, None)).mean())
    return {"top1": float(top1.mean()), "top5": float(top5.mean()), "num_videos": n, "loss": loss,
            "mean_class_acc": float(np.mean(accs)), "per_class": per_class, "confusion": confusion}


__all__ = ["TrainState", "Loop", "train_one_epoch", "evaluate", "EvalResult", "classification_metrics",
           "TrainingDiverged", "gather_failures", "report_failures", "to_model_input"]
