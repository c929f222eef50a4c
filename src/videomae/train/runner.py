"""What pretraining and fine-tuning share around the loop: the run's folder and logging,
batch arithmetic, optimizer and schedule, resuming, checkpoints and the epoch loop."""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from ..data.collate import merge_batches
from ..data.sampler import ResumableSampler, RunSampler
from ..data.threads import ThreadedChunks
from . import checkpointing as ckpt
from .. import devices
from . import distributed as dist_utils
from .distributed import DistInfo
from .engine import Loop, LossFn, TrainState, train_one_epoch
from .failures import FailureLedger
from .metrics import MetricsWriter, plot_metrics
from .optim import CosineSchedule, build_optimizer, scaled_lr
from .options import BaseOptions, TrainOptions

logger = logging.getLogger("videomae.train")
_PACKAGE_LOGGER = logging.getLogger("videomae")


@dataclass
class RunContext:
    options: BaseOptions
    dist: DistInfo
    out_dir: Path
    metrics: MetricsWriter
    autocast_dtype: torch.dtype | None
    precision: str


def resolve_precision(precision: str, device: torch.device) -> tuple[str, torch.dtype | None]:
    """'auto' -> bf16 on GPUs that have it (else fp16), bf16 on CPUs with bf16 matrix units
    (`devices.cpu_bf16_units`: AMX, AVX512-BF16), fp32 on other CPUs."""
    if precision == "auto":
        if device.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "bf16" if devices.cpu_bf16_units() else "fp32"
    return precision, {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


@contextlib.contextmanager
def run_context(options: BaseOptions) -> Iterator[RunContext]:
    """Join the process group (once per process), check the output folder (before any work),
    and log to `train.log` on rank 0."""
    dist = dist_utils.setup(options.device)
    handler: logging.Handler | None = None
    metrics: MetricsWriter | None = None
    previous_level = _PACKAGE_LOGGER.level
    try:
        out_dir = Path(options.output_dir)
        error = None
        if dist.is_main:
            try:
                ckpt.check_writable(out_dir)
            except PermissionError as err:
                error = str(err)
        error = dist_utils.broadcast_object(error)
        if error is not None:
            raise PermissionError(error)
        if dist.is_main:
            if _PACKAGE_LOGGER.getEffectiveLevel() > logging.INFO:
                _PACKAGE_LOGGER.setLevel(logging.INFO)
            handler = logging.FileHandler(out_dir / "train.log")
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            _PACKAGE_LOGGER.addHandler(handler)
        else:
            _PACKAGE_LOGGER.setLevel(logging.ERROR)  # only rank 0 logs
        precision, dtype = resolve_precision(options.precision, dist.device)
        logger.info("precision: %s (%s)", precision, devices.dtype_reason(options.precision, dist.device))
        metrics = MetricsWriter(out_dir, enabled=dist.is_main)
        yield RunContext(options, dist, out_dir, metrics, dtype, precision)
    finally:
        if metrics is not None:
            metrics.close()
        if handler is not None:
            _PACKAGE_LOGGER.removeHandler(handler)
            handler.close()
        _PACKAGE_LOGGER.setLevel(previous_level)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_num_workers(options: BaseOptions) -> int:
    """The option, else every CPU of this process but one (`devices.default_num_workers`)."""
    return options.num_workers if options.num_workers is not None else devices.default_num_workers()


def make_loader(dataset: Dataset, sampler: Sampler, batch_size: int, collate: Callable, options: BaseOptions,
                dist: DistInfo, drop_last: bool, prefetch_factor: int = 2) -> DataLoader:
    workers = default_num_workers(options)
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, collate_fn=collate,
        pin_memory=dist.device.type == "cuda", drop_last=drop_last, persistent_workers=workers > 0,
        worker_init_fn=devices.one_thread_worker if workers > 0 else None,
        prefetch_factor=prefetch_factor if workers > 0 else None,
        generator=torch.Generator().manual_seed(options.seed),  # never draw from the global RNG
    )


def chunk_size(per_device: int, workers: int) -> int:
    """Videos one worker loads at a time: the largest divisor of the per-device batch that gives
    every worker a part of each batch, so a batch is loaded by all workers at once rather than
    by one (one worker per batch leaves most workers idle when an epoch has few batches)."""
    if workers <= 1:
        return per_device
    target = max(1, per_device // workers)
    return max(d for d in range(1, target + 1) if per_device % d == 0)


def run_batches(loader: Iterable[dict[str, Any]], chunks_per_batch: int) -> Iterator[dict[str, Any]]:
    """The loader's chunks, `chunks_per_batch` at a time, as micro-batches (see `merge_batches`)."""
    parts: list[dict[str, Any]] = []
    for part in loader:
        parts.append(part)
        if len(parts) == chunks_per_batch:
            yield merge_batches(parts)
            parts = []


@dataclass
class BatchPlan:
    """per_device x world_size x accum = global batch (videos per optimizer step)."""

    global_batch: int
    per_device: int
    accum: int
    steps_per_epoch: int


def plan_batches(options: TrainOptions, num_videos: int, world_size: int) -> BatchPlan:
    if options.per_device_batch_size is not None:
        per_device = options.per_device_batch_size
        accum, rest = divmod(options.batch_size, per_device * world_size)
        if rest or accum == 0:
            raise ValueError(f"batch_size {options.batch_size} is not a multiple of per_device_batch_size "
                             f"{per_device} x {world_size} process(es)")
    else:
        accum = options.accum_steps
        per_device, rest = divmod(options.batch_size, world_size * accum)
        if rest or per_device == 0:
            raise ValueError(f"batch_size {options.batch_size} does not split over {world_size} process(es) x "
                             f"{accum} accumulation step(s); choose a multiple of {world_size * accum}")
    steps = num_videos // world_size // per_device // accum
    if steps == 0:
        raise ValueError(f"the training set has {num_videos} videos, fewer than one global batch of "
                         f"{options.batch_size}; lower batch_size")
    return BatchPlan(options.batch_size, per_device, accum, steps)


@dataclass
class FitResult:
    state: TrainState
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False
    checkpoint: Path | None = None


def fit(
    ctx: RunContext,
    raw_model: nn.Module,
    dataset: Dataset,
    collate: Callable,
    loss_fn: LossFn,
    options: TrainOptions,
    layer_decay: float = 1.0,
    on_epoch_end: Callable[[TrainState], dict[str, Any] | None] | None = None,
    extra_files: dict[str, str] | None = None,
) -> FitResult:
    """Train `raw_model` on `dataset` for `options.epochs` (or `max_steps`), resumable."""
    dist, device = ctx.dist, ctx.dist.device
    plan = plan_batches(options, len(dataset), dist.world_size)
    peak = options.lr if options.lr is not None else scaled_lr(options.base_lr, plan.global_batch)
    total_steps = options.epochs * plan.steps_per_epoch
    warmup = options.warmup_steps if options.warmup_steps is not None else \
        round(options.warmup_epochs * plan.steps_per_epoch)
    schedule = CosineSchedule(peak_lr=peak, total_steps=total_steps, warmup_steps=min(warmup, total_steps),
                              min_lr=scaled_lr(options.min_lr, plan.global_batch),
                              warmup_lr=scaled_lr(options.warmup_lr, plan.global_batch))
    logger.info("%d videos, %d process(es) x %d per device x %d accumulation = batch %d; %d steps per epoch, "
                "%d in all; peak lr %.3g, %d warmup steps", len(dataset), dist.world_size,
                plan.per_device, plan.accum, plan.global_batch, plan.steps_per_epoch, total_steps, peak,
                schedule.warmup_steps)

    raw_model.to(device)
    if options.gradient_checkpointing:
        raw_model.gradient_checkpointing_enable()
    if options.float8:
        if ctx.precision != "bf16":
            raise ValueError(f"float8 training runs under bf16 autocast; precision is {ctx.precision!r}: "
                             "set precision='bf16'")
        from ..fp8 import convert_for_training

        convert_for_training(raw_model)
        logger.info("float8: the transformer blocks' linear layers compute in FP8 (torchao, row-wise scales)")
    optimizer = build_optimizer(raw_model, peak, options.weight_decay, options.betas, options.eps, layer_decay)
    scaler = torch.amp.GradScaler(device.type, enabled=ctx.precision == "fp16")
    sampler = ResumableSampler(len(dataset), dist.world_size, dist.rank, shuffle=True, seed=options.seed)

    state = TrainState()
    seed_everything(options.seed + dist.rank)  # the training stream (drop path, ...): one per process
    if dist.is_main:
        ckpt.remove_incomplete(ctx.out_dir)
    resume = ckpt.load_resume(options.resume, ctx.out_dir)
    if resume is not None:
        state = _restore(*resume, raw_model, optimizer, scaler, plan, dist)
        ctx.metrics.truncate_after(state.step)
    elif options.resume:
        logger.info("resume: no checkpoint in %s yet, starting from scratch", ctx.out_dir)

    model: nn.Module = raw_model
    if options.compile:
        if hasattr(raw_model, "forward_indexed"):
            # Pretraining: compile the computation on token indices, which has no host sync and
            # no data-dependent shape, so it is one graph (benchmarks/RESULTS.md: 1.4x eager on an
            # H100); the mask checks around it stay eager. State dict names are unchanged.
            raw_model.forward_indexed = torch.compile(raw_model.forward_indexed)
        else:
            # The whole model: measured faster in training than compiling each block, whose code
            # the encoder and decoder share at different sizes (which makes its shapes dynamic).
            model = torch.compile(model)
    if dist.distributed:
        model = _wrap_ddp(model, device)

    last_saved = {"step": state.step if resume is not None else -1}
    # One loader over every remaining micro-batch of the run, in chunks that all workers share.
    per_epoch = plan.steps_per_epoch * plan.accum * plan.per_device
    start_epoch, start = state.epoch, state.epoch_batches * plan.per_device
    if start >= per_epoch:  # resumed at the end of an epoch
        start_epoch, start = start_epoch + 1, 0
    workers = default_num_workers(options)
    chunk = chunk_size(plan.per_device, workers)
    chunks_per_batch = plan.per_device // chunk
    prefetch = max(2, math.ceil(2 * chunks_per_batch / max(workers, 1)))  # two batches in flight
    run_sampler = RunSampler(sampler, per_epoch, options.epochs, start_epoch, start)
    if getattr(dataset, "decoder", None) is not None:  # GPU decoding: threads of this process
        loader = ThreadedChunks(dataset, run_sampler, chunk, collate, threads=max(workers, 1),
                                in_flight=2 * chunks_per_batch)
    else:
        loader = make_loader(dataset, run_sampler, chunk, collate, options, dist, drop_last=False,
                             prefetch_factor=prefetch)
    batches = run_batches(loader, chunks_per_batch)
    logger.info("data: %d worker(s), %d video(s) per worker load, %d load(s) per batch in flight per worker", workers,
                chunk, prefetch)

    def save(state_now: TrainState) -> Path | None:
        rngs = dist_utils.all_gather_objects(ckpt.rng_state())
        path = None
        if dist.is_main:
            payload = {
                "model": raw_model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                "train_state": state_now.to_dict(), "rng": rngs, "world_size": dist.world_size,
                "data": {"seed": options.seed, "epoch": state_now.epoch, "num_videos": len(dataset),
                         "videos_consumed": state_now.epoch_batches * plan.per_device * dist.world_size},
                "global_batch": plan.global_batch, "config": raw_model.config.to_dict(),
                "options": options.to_dict(),
            }
            path = ckpt.save_checkpoint(ctx.out_dir, state_now.step, payload, raw_model, options.keep_last,
                                        extra_files)
            logger.info("checkpoint written: %s", path)
        last_saved["step"] = state_now.step
        return path

    def due(state_now: TrainState) -> bool:
        return state_now.step % options.checkpoint_every == 0

    def on_step(state_now: TrainState) -> None:
        if due(state_now):
            save(state_now)

    loop = Loop(model=model, optimizer=optimizer, scaler=scaler, schedule=schedule, batches=batches, dist=dist,
                loss_fn=loss_fn, steps_per_epoch=plan.steps_per_epoch, accum_steps=plan.accum,
                max_steps=options.max_steps, clip_grad=options.clip_grad, autocast_dtype=ctx.autocast_dtype,
                mean=options.mean, std=options.std, log_every=options.log_every, progress=options.progress,
                on_step=on_step, due=due, on_log=lambda record: ctx.metrics.write("train", record),
                failures=FailureLedger(options.max_failed_fraction))
    result = FitResult(state=state)
    stopped = options.max_steps is not None and state.step >= options.max_steps
    if options.progress and dist.is_main:
        from tqdm.auto import tqdm

        last = min(total_steps, options.max_steps or total_steps)
        loop.bar = tqdm(total=last, initial=min(state.step, last), unit="step", dynamic_ncols=True)
    with devices.model_threads(device, 0 if isinstance(loader, ThreadedChunks) else workers):
        while state.epoch < options.epochs and not stopped:
            if state.epoch_batches >= plan.steps_per_epoch * plan.accum:  # resumed from the end of an epoch
                state.epoch, state.epoch_batches = state.epoch + 1, 0
                continue
            stats, stopped = train_one_epoch(loop, state)
            finished_epoch = state.epoch_batches >= plan.steps_per_epoch * plan.accum
            failures = loop.failures.close_epoch(f"epoch {state.epoch}")  # gathers, reports; raises if too many
            record = {"step": state.step, "epoch": state.epoch, **stats, "skipped_videos": len(failures),
                      "skipped": failures, "complete": finished_epoch}
            if finished_epoch:
                state.epoch += 1
                state.epoch_batches = 0
                if on_epoch_end is not None:
                    record.update(on_epoch_end(state) or {})
            ctx.metrics.write("epoch", record)
            result.history.append(record)
            share = stats.get("data_share")
            logger.info("epoch %d: loss %.4f%s, %d video(s) skipped%s", record["epoch"], stats["loss"],
                        f", train acc {stats['train_acc']:.3f}" if "train_acc" in stats else "", len(failures),
                        f", waited for data {share:.0%} of the time" if share is not None else "")
    if loop.bar is not None:
        loop.bar.close()
    if last_saved["step"] != state.step:
        result.checkpoint = save(state)
    else:
        latest = ckpt.latest_checkpoint(ctx.out_dir) if dist.is_main else None
        result.checkpoint = latest
    result.state = state
    result.stopped_early = state.epoch < options.epochs
    if dist.is_main and ctx.metrics.path.is_file():
        plot_metrics(ctx.metrics.path, ctx.out_dir / "curves.png")
    dist_utils.barrier()
    return result


def _wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel without a buffer broadcast every forward: the buffers are the
    fixed position tables, equal everywhere."""
    ddp = nn.parallel.DistributedDataParallel
    no_sync = {"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(ddp).parameters \
        else {"broadcast_buffers": False}
    return ddp(model, device_ids=[device.index] if device.type == "cuda" else None, **no_sync)


def _restore(path: Path, payload: dict[str, Any], raw_model: nn.Module, optimizer: torch.optim.Optimizer,
             scaler: torch.amp.GradScaler, plan: BatchPlan, dist: DistInfo) -> TrainState:
    """Load a checkpoint's training state into the model, optimizer and scaler; restore this
    process's RNG; return where to continue."""
    raw_model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    if payload.get("scaler"):
        scaler.load_state_dict(payload["scaler"])
    state = TrainState(**payload["train_state"])
    if payload.get("global_batch") != plan.global_batch:
        logger.warning("resume: the checkpoint was trained with batch %s, this run uses %d; the schedule and "
                       "data position are recomputed", payload.get("global_batch"), plan.global_batch)
    consumed = payload["data"]["videos_consumed"]
    per_step = plan.per_device * dist.world_size
    if consumed % per_step:
        logger.warning("resume: %d videos of epoch %d were consumed, not a whole number of batches of %d now; "
                       "continuing at the next whole batch", consumed, state.epoch, per_step)
    state.epoch_batches = math.ceil(consumed / per_step)
    rngs = payload["rng"]
    if len(rngs) == dist.world_size:
        ckpt.set_rng_state(rngs[dist.rank])
    else:
        logger.warning("resume: the checkpoint holds RNG states of %d process(es), this run has %d; random "
                       "streams restart from the seed", len(rngs), dist.world_size)
    logger.info("resumed from %s: step %d, epoch %d, %d batch(es) into the epoch", path, state.step, state.epoch,
                state.epoch_batches)
    return state


__all__ = ["RunContext", "run_context", "fit", "FitResult", "plan_batches", "BatchPlan", "make_loader",
           "resolve_precision", "seed_everything", "default_num_workers", "chunk_size", "run_batches"]
