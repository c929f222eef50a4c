"""`pretrain`, `finetune` and `evaluate`: each takes its options (a dataclass, a JSON file
and/or keywords), wires data, model and loop together, and returns its metrics."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import WEIGHT_NAMES
from ..config import PRESETS, VideoMAEConfig
from ..data.collate import MaskGenerator, TrainCollate, eval_collate
from ..data.datasets import (Decoder, MultiViewDataset, VideoClipDataset, VideoRecord, load_records,
                             read_class_names)
from ..data.mixup import Mixup, soft_cross_entropy
from ..data.sampler import MIXUP, ResumableSampler, sample_seed
from ..data.threads import ThreadedChunks
from ..modeling import VideoMAEForPreTraining, VideoMAEForVideoClassification
from ..pipeline import SAMPLING_RATE_KEY
from . import checkpointing as ckpt
from .engine import TrainState, classification_metrics, evaluate as evaluate_views, report_failures
from .failures import check_paths
from .metrics import format_per_class, save_eval_report
from .options import BaseOptions, EvalOptions, FinetuneOptions, PretrainOptions, TrainOptions
from .runner import RunContext, default_num_workers, fit, make_loader, run_context, seed_everything

logger = logging.getLogger("videomae.train")
OptionsT = TypeVar("OptionsT", bound=BaseOptions)


def _resolve(
    cls: type[OptionsT], options: OptionsT | dict | str | None, config_file: str | None, overrides: dict
) -> OptionsT:
    if isinstance(options, cls):
        if config_file is not None:
            raise TypeError(f"pass either a {cls.__name__} or config_file, not both")
        return options.replace(**overrides) if overrides else options
    if isinstance(options, dict):
        overrides = {**options, **overrides}
    elif isinstance(options, (str, Path)):
        config_file = str(options)
    elif options is not None:
        raise TypeError(f"expected {cls.__name__}, a dict or a JSON file, got {type(options).__name__}")
    return cls.load(config_file, **overrides)


def build_model(cls: type[nn.Module], options: TrainOptions, overrides: dict[str, Any],
                ignore_mismatched_sizes: bool = False) -> nn.Module:
    """From `init_from` weights, or a fresh model of the preset / config.json `options.model`."""
    return build_model_and_new_weights(cls, options, overrides, ignore_mismatched_sizes)[0]


def build_model_and_new_weights(cls: type[nn.Module], options: TrainOptions, overrides: dict[str, Any],
                                ignore_mismatched_sizes: bool = False) -> tuple[nn.Module, set[str]]:
    """`build_model`, and the names (transformers' keys) of the weights initialised rather than
    loaded: every one for a fresh model; those `init_from` lacks or has at another size."""
    overrides = dict(overrides)
    if options.num_frames is not None:
        overrides["num_frames"] = options.num_frames
    if options.image_size is not None:
        overrides["image_size"] = options.image_size
    overrides.update(options.config_overrides)
    if options.init_from:
        model, info = cls.from_pretrained(model_source(options.init_from), output_loading_info=True,
                                          ignore_mismatched_sizes=ignore_mismatched_sizes, **overrides)
        return model, set(info["missing_keys"]) | {key for key, _, _ in info["mismatched_keys"]}
    spec = Path(options.model)
    if options.model in PRESETS:
        config = VideoMAEConfig.from_preset(options.model, **overrides)
    elif spec.is_file():
        config = VideoMAEConfig.from_json_file(spec, **overrides)
    elif (spec / "config.json").is_file():
        config = VideoMAEConfig.from_json_file(spec / "config.json", **overrides)
    else:
        raise ValueError(f"model {options.model!r} is neither a preset ({', '.join(PRESETS)}) nor a config.json; "
                         f"to start from weights, pass init_from")
    model = cls(config)
    return model, set(model.state_dict())


def scale_new_head(model: nn.Module, new_weights: set[str], scale: float) -> bool:
    """The original recipe's `head_init_scale`: a newly initialised classifier starts with its
    weight and bias times `scale` (0.001), so the first steps barely move the pretrained encoder.
    A classifier loaded from `init_from` is left as trained. Returns whether it was scaled."""
    head = getattr(model, "classifier", None)
    if not isinstance(head, nn.Linear) or not {"classifier.weight", "classifier.bias"} & new_weights:
        return False
    with torch.no_grad():
        head.weight.mul_(scale)
        if head.bias is not None:
            head.bias.mul_(scale)
    return True


def model_source(path: str) -> str:
    """A run folder or a `checkpoint-N` folder stands for the model saved inside it."""
    folder = Path(path)
    if folder.is_dir() and not any((folder / name).is_file() for name in WEIGHT_NAMES) and \
            (folder / ckpt.MODEL_DIR / "config.json").is_file():
        return str(folder / ckpt.MODEL_DIR)
    return path


def _square_size(config: VideoMAEConfig) -> int:
    height, width = config.image_hw
    if height != width:
        raise ValueError(f"training crops are square; the model's image_size is {height}x{width}")
    return height


def _write_run_files(ctx: RunContext, options: BaseOptions, config: VideoMAEConfig) -> None:
    if ctx.dist.is_main:
        options.save(ctx.out_dir / "options.json")
        config.save_pretrained(ctx.out_dir)


def _processor_config(config: VideoMAEConfig, options: BaseOptions) -> dict[str, str]:
    """preprocessor_config.json for saved models: the size and statistics they were trained with."""
    size = _square_size(config)
    data = {"image_processor_type": "VideoMAEImageProcessor", "do_resize": True, "size": {"shortest_edge": size},
            "do_center_crop": True, "crop_size": {"height": size, "width": size}, "do_rescale": True,
            "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": list(options.mean),
            "image_std": list(options.std), "resample": 2}
    return {"preprocessor_config.json": json.dumps(data, indent=2) + "\n"}


def _frame_stride(options: Any) -> int:
    """The videos' frame stride: the option, else what `videomae prep` recorded beside the data."""
    if options.frame_stride is not None:
        return options.frame_stride
    from ..prep import stored_frame_stride

    return stored_frame_stride(options.data)


def _decoder(options: Any, device: torch.device) -> Decoder | None:
    """None for PyAV (the datasets' default), or a GPU decoder (NVDEC) on this process's GPU."""
    if options.decoder == "pyav":
        return None
    from ..data.gpu_decoders import gpu_decoder

    return gpu_decoder(options.decoder, device)


def _train_dataset(records: list[VideoRecord], config: VideoMAEConfig, options: TrainOptions,
                   device: torch.device, rand_augment: str | None = None,
                   random_erasing: float = 0.0, sampling: str = "dense") -> VideoClipDataset:
    """Training clips; fine-tuning adds RandAugment and random erasing (pretraining uses neither)
    and may sample segments (its protocol); pretraining always takes dense clips."""
    size = _square_size(config)
    short_side = options.short_side or max(size, round(size * 320 / 224))
    return VideoClipDataset(records, config.num_frames, options.sampling_rate, size, short_side,
                            options.train_crop, options.flip, options.num_sample, options.seed,
                            frame_stride=_frame_stride(options), decoder=_decoder(options, device),
                            rand_augment=rand_augment or None, random_erasing=random_erasing, sampling=sampling)


def _finish(ctx: RunContext, model: nn.Module, options: BaseOptions, extra: dict[str, str]) -> str:
    folder = ctx.out_dir / "model"
    if ctx.dist.is_main:
        ckpt.save_model_folder(model, folder, extra)
        logger.info("model saved to %s (load it with from_pretrained)", folder)
    return str(folder)


# --------------------------------------------------------------------------- pretraining
def pretrain(options: PretrainOptions | dict | str | None = None, /, *, config_file: str | None = None,
             **overrides: Any) -> dict[str, Any]:
    """Self-supervised pretraining: tube-masked video reconstruction (the paper's recipe).

    Args:
        options: a `PretrainOptions`, a dict of options, or a JSON file of them.
        config_file: a JSON file of options, below keyword overrides.
        **overrides: any `PretrainOptions` field.

    Returns:
        metrics: final step and epoch, per-epoch records, last loss, skipped videos, paths.
    """
    options = _resolve(PretrainOptions, options, config_file, overrides)
    with run_context(options) as ctx:
        seed_everything(options.seed)
        extra = {} if options.norm_pix_loss is None else {"norm_pix_loss": options.norm_pix_loss}
        model = build_model(VideoMAEForPreTraining, options, extra)
        model.image_mean, model.image_std = options.mean, options.std  # targets un-normalise with the run's
        config = model.config
        config.extra[SAMPLING_RATE_KEY] = options.sampling_rate  # saved with the model, for classify / embed
        records, _ = load_records(options.data, options.data_root, labeled=False)
        check_paths([r.path for r in records])  # a wrong data_root fails here, not after an epoch of nothing
        dataset = _train_dataset(records, config, options, ctx.dist.device)
        size = _square_size(config)
        collate = TrainCollate((config.num_frames, config.num_channels, size, size),
                               MaskGenerator(config.grid_size, options.mask_ratio, options.mask_type,
                                             options.decoder_mask_ratio), options.seed)
        _write_run_files(ctx, options, config)

        def loss_fn(net: nn.Module, batch: dict[str, Any], state: TrainState) -> tuple[torch.Tensor, int, None]:
            # The mask stays on the CPU: the model checks it and turns it into token indices there,
            # so the step never waits on the GPU to read a count back.
            mask = batch["bool_masked_pos"]
            out = net(batch["pixel_values"], bool_masked_pos=mask, decoder_masked_pos=batch.get("decoder_masked_pos"))
            return out.loss, batch["pixel_values"].shape[0], None

        files = _processor_config(config, options)
        result = fit(ctx, model, dataset, collate, loss_fn, options, extra_files=files)
        model_dir = _finish(ctx, model, options, files)
    return _summary(result, ctx, model_dir)


def _summary(result: Any, ctx: RunContext, model_dir: str) -> dict[str, Any]:
    history = result.history
    skipped: dict[str, str] = {}
    for record in history:
        skipped.update(record.get("skipped", {}))
    return {"step": result.state.step, "epoch": result.state.epoch, "stopped_early": result.stopped_early,
            "loss": history[-1]["loss"] if history else None, "history": history,
            "skipped_videos": skipped, "output_dir": str(ctx.out_dir), "model_dir": model_dir,
            "checkpoint": str(result.checkpoint) if result.checkpoint else None}


# --------------------------------------------------------------------------- fine-tuning
def _label_names(names: list[str] | None, records: list[VideoRecord], num_labels: int | None) -> dict[int, str]:
    n = num_labels or (len(names) if names else max(r.label for r in records) + 1)
    if names and len(names) != n:
        raise ValueError(f"num_labels is {n} but there are {len(names)} class names")
    bad = [r for r in records if r.label >= n]
    if bad:
        raise ValueError(f"{bad[0].path}: label {bad[0].label} is not below num_labels={n}")
    return {i: (names[i] if names else str(i)) for i in range(n)}


def finetune(options: FinetuneOptions | dict | str | None = None, /, *, config_file: str | None = None,
             **overrides: Any) -> dict[str, Any]:
    """Supervised fine-tuning for classification (layer decay, drop path, Mixup / CutMix,
    label smoothing), then multi-view evaluation on `eval_data`.

    Returns:
        metrics: as `pretrain`, plus `eval` (top-1 / top-5 / per-class) when eval_data is given.
    """
    options = _resolve(FinetuneOptions, options, config_file, overrides)
    with run_context(options) as ctx:
        given = read_class_names(options.labels) if options.labels else None
        records, names = load_records(options.data, options.data_root, labeled=True, class_names=given)
        eval_records: list[VideoRecord] = []
        if options.eval_data:
            eval_records, _ = load_records(options.eval_data, options.data_root, labeled=True, class_names=names)
        check_paths([r.path for r in records + eval_records])
        id2label = _label_names(names, records + eval_records, options.num_labels)
        seed_everything(options.seed)
        model, new_weights = build_model_and_new_weights(VideoMAEForVideoClassification, options, {
            "num_labels": len(id2label), "id2label": id2label, "label2id": {v: k for k, v in id2label.items()},
            "drop_path_rate": options.drop_path, "use_mean_pooling": True}, ignore_mismatched_sizes=True)
        if scale_new_head(model, new_weights, options.head_init_scale):
            logger.info("new classifier initialised at scale %g", options.head_init_scale)
        config = model.config
        config.extra[SAMPLING_RATE_KEY] = options.sampling_rate  # saved with the model, for classify / embed
        dataset = _train_dataset(records, config, options, ctx.dist.device, options.rand_augment,
                                 options.random_erasing, options.sampling)
        size = _square_size(config)
        collate = TrainCollate((config.num_frames, config.num_channels, size, size), None, options.seed)
        _write_run_files(ctx, options, config)
        mixup = Mixup(config.num_labels, options.mixup, options.cutmix, options.mixup_prob, options.mixup_switch_prob,
                      options.label_smoothing)

        def loss_fn(net: nn.Module, batch: dict[str, Any], state: TrainState) -> tuple[torch.Tensor, int, torch.Tensor]:
            pixels, labels = batch["pixel_values"], batch["labels"].to(ctx.dist.device, non_blocking=True)
            if mixup.active:
                first = max(int(batch["index"][0]), 0)
                rng = np.random.default_rng(sample_seed(options.seed, state.epoch, first, MIXUP))
                mixed, targets = mixup(pixels, labels, rng)
                logits = net(mixed).logits
                loss = soft_cross_entropy(logits, targets)
            else:
                logits = net(pixels).logits
                loss = F.cross_entropy(logits.float(), labels, label_smoothing=options.label_smoothing)
            correct = (logits.detach().argmax(dim=-1) == labels).sum()
            return loss, pixels.shape[0], correct

        def on_epoch_end(state: TrainState) -> dict[str, Any] | None:
            if not (eval_records and options.eval_every and state.epoch % options.eval_every == 0
                    and state.epoch < options.epochs):
                return None
            metrics = run_evaluation(ctx, model, eval_records, options, config, progress=options.progress,
                                     per_class_table=False)
            ctx.metrics.write("eval", {"step": state.step, "epoch": state.epoch, "top1": metrics["top1"],
                                       "top5": metrics["top5"], "loss": metrics["loss"]})
            model.train()
            return {"eval_top1": metrics["top1"], "eval_top5": metrics["top5"]}

        files = _processor_config(config, options)
        result = fit(ctx, model, dataset, collate, loss_fn, options, layer_decay=options.layer_decay,
                     on_epoch_end=on_epoch_end, extra_files=files)
        model_dir = _finish(ctx, model, options, files)
        summary = _summary(result, ctx, model_dir)
        if eval_records and not result.stopped_early:
            metrics = run_evaluation(ctx, model, eval_records, options, config, progress=options.progress)
            ctx.metrics.write("eval", {"step": result.state.step, "epoch": result.state.epoch,
                                       "top1": metrics["top1"], "top5": metrics["top5"], "loss": metrics["loss"]})
            if ctx.dist.is_main:
                metrics["files"] = save_eval_report(ctx.out_dir, metrics, prefix="eval_")
                from .metrics import plot_metrics

                plot_metrics(ctx.metrics.path, ctx.out_dir / "curves.png")
            summary["eval"] = _public(metrics)
    return summary


# --------------------------------------------------------------------------- evaluation
def run_evaluation(ctx: RunContext, model: nn.Module, records: list[VideoRecord], options: Any,
                   config: VideoMAEConfig, progress: bool = True, per_class_table: bool = True) -> dict[str, Any]:
    """Multi-view top-1 / top-5 and the per-class report of `model` on `records`; the per-class
    table is logged unless `per_class_table` is False (the evaluations during training)."""
    size = _square_size(config)
    dataset = MultiViewDataset(records, config.num_frames, options.sampling_rate, size, options.eval_num_clips,
                               options.eval_num_crops, getattr(options, "short_side", None) if
                               isinstance(options, EvalOptions) else None, frame_stride=_frame_stride(options),
                               decoder=_decoder(options, ctx.dist.device), sampling=options.sampling)
    sampler = ResumableSampler(len(dataset), ctx.dist.world_size, ctx.dist.rank, shuffle=False, drop_last=False)
    if dataset.decoder is not None:  # GPU decoding: threads of this process
        loader = ThreadedChunks(dataset, sampler, options.eval_batch_size, eval_collate,
                                threads=max(default_num_workers(options), 1), in_flight=4)
    else:
        loader = make_loader(dataset, sampler, options.eval_batch_size, eval_collate, options, ctx.dist,
                             drop_last=False)
    model.to(ctx.dist.device)
    result = evaluate_views(model, loader, ctx.dist, options.mean, options.std, ctx.autocast_dtype,
                            progress=progress)
    report_failures(result.failures, "evaluation")
    names = {int(k): v for k, v in config.id2label.items()}
    metrics = classification_metrics(result.probs, result.labels, config.num_labels, names)
    metrics["skipped_videos"] = result.failures
    metrics["num_views"] = dataset.num_views
    logger.info("evaluation on %d videos (%d views each): top-1 %.4f, top-5 %.4f, mean class accuracy %.4f",
                metrics["num_videos"], dataset.num_views, metrics["top1"], metrics["top5"], metrics["mean_class_acc"])
    if per_class_table:
        logger.info("per-class accuracy:\n%s", format_per_class(metrics))
    return metrics


def _public(metrics: dict[str, Any]) -> dict[str, Any]:
    out = dict(metrics)
    out["confusion_matrix"] = np.asarray(out.pop("confusion")).tolist()
    return out


def _generic_names(id2label: dict[int, str]) -> bool:
    return all(re.fullmatch(r"LABEL_\d+|\d+", str(v)) for v in id2label.values())


def evaluate(options: EvalOptions | dict | str | None = None, /, *, config_file: str | None = None,
             **overrides: Any) -> dict[str, Any]:
    """Multi-view evaluation of a fine-tuned classifier (the paper's protocol: the softmax of
    every clip x crop view is averaged per video, then ranked).

    Returns:
        metrics: top1, top5, loss, mean_class_acc, num_videos, per_class, confusion_matrix,
        skipped_videos; also written to output_dir (metrics.json, per_class.json,
        confusion_matrix.npy / .json).
    """
    options = _resolve(EvalOptions, options, config_file, overrides)
    with run_context(options) as ctx:
        config_overrides = {}
        if options.num_frames is not None:
            config_overrides["num_frames"] = options.num_frames
        if options.image_size is not None:
            config_overrides["image_size"] = options.image_size
        model = VideoMAEForVideoClassification.from_pretrained(model_source(options.model), **config_overrides)
        config = model.config
        names = read_class_names(options.labels) if options.labels else None
        if names is None and not _generic_names(config.id2label):
            names = [config.id2label[i] for i in range(config.num_labels)]
        records, _ = load_records(options.data, options.data_root, labeled=True, class_names=names)
        check_paths([r.path for r in records])
        if names is not None and len(names) != config.num_labels:
            raise ValueError(f"{len(names)} class names, but the model has {config.num_labels} outputs")
        if names is not None:
            config.id2label = dict(enumerate(names))
        metrics = run_evaluation(ctx, model, records, options, config, progress=options.progress)
        if ctx.dist.is_main:
            options.save(ctx.out_dir / "options.json")
            metrics["files"] = save_eval_report(ctx.out_dir, metrics)
    return _public(metrics)


__all__ = ["pretrain", "finetune", "evaluate", "build_model", "build_model_and_new_weights", "scale_new_head",
           "run_evaluation"]
