"""`classify`, `embed` and `reconstruct`: parse the flags, call `videomae.pipeline`, print.

The work (loading rules, decoding in worker processes, batching, averaging, writing feature
files) lives in the library, shared with the demo and any script; see `videomae.pipeline`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from .. import pipeline
from ..data.gpu_decoders import GPU_DECODERS
from ..devices import default_num_workers, describe_dtype, resolve_device
from ..writers import check_feature_path, embed_to_parquet, write_features


class ErrorLog:
    """Per-video errors: each printed as one line at once; the command then fails."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.count = 0

    def __call__(self, message: str) -> None:
        self.count += 1
        print(f"videomae {self.command}: error: {message}", file=sys.stderr, flush=True)


class OnceLine:
    """A line for stderr, printed before the first result (a run that fails at once prints only
    its error)."""

    def __init__(self, text: str | None) -> None:
        self.text = text

    def __call__(self) -> None:
        if self.text:
            print(self.text, file=sys.stderr, flush=True)
            self.text = None


def _early_decoding(args, paths):  # noqa: ANN001,ANN202
    """(decoding, processor) started before the model's weights load, or (None, None).

    Decoding workers then fork from a small process, before CUDA starts, and decode while the
    model loads and moves to its device. Only where the model's config.json is at hand (a folder
    or a hub id) and PyAV decodes; GPU decoders start with the model."""
    from ..exported import is_exported

    if args.decoder != "pyav" or is_exported(args.model) or Path(args.model).is_file():
        return None, None
    try:
        config = pipeline.read_config(args.model, args.offline)
    except (OSError, ValueError):  # the model's own loading says what is wrong
        return None, None
    if config is None:
        return None, None
    processor = pipeline.load_processor(args.model, config, args.offline)
    clip_len, rate = pipeline.clip_settings(config, args.sampling_rate)
    decoding = pipeline.start_decoding(paths, processor, clip_len=clip_len, sampling_rate=rate,
                                       num_clips=args.num_clips, num_workers=args.num_workers, device=args.device,
                                       decoder_resize=not args.exact_resize, frame_stride=args.frame_stride)
    return decoding, processor


def _prepare(model, args, compile_blocks: bool = False, processor=None):  # noqa: ANN001,ANN202
    """Move the model to its device (and compile it); return the checkpoint's processor."""
    device = resolve_device(args.device)
    model.to(device)
    if getattr(args, "dtype", None) == "float8":
        from ..fp8 import float8_supported, quantize_float8

        if not float8_supported(device):
            raise ValueError(f"--dtype float8 needs a GPU with FP8 matrix units (compute capability 8.9 or higher: "
                             f"Ada, Hopper, Blackwell); {device} has none")
        quantize_float8(model)
    if compile_blocks:
        model.compile_blocks()
    return processor or pipeline.load_processor(args.model, model.config, args.offline)


def _dtype_line(args) -> OnceLine:  # noqa: ANN001
    """'dtype: bfloat16 (CPU has AMX bf16)': on the CPU 'auto' depends on the machine, so say
    which way it went (nothing for an exported file, whose precision was fixed when exported)."""
    from ..exported import is_exported

    if args.dtype == "float8":
        return OnceLine("dtype: float8 (the blocks' linear layers in e4m3 with row-wise scales, the rest bfloat16)")
    return OnceLine(None if is_exported(args.model) else describe_dtype(args.dtype, resolve_device(args.device)))


def _run_options(args) -> dict:  # noqa: ANN001
    return dict(sampling_rate=args.sampling_rate, num_clips=args.num_clips, batch_size=args.batch_size,
                num_workers=args.num_workers, dtype="bfloat16" if args.dtype == "float8" else args.dtype,
                progress=args.progress,
                decoder_resize=not args.exact_resize, decoder=args.decoder, frame_stride=args.frame_stride)


# --------------------------------------------------------------------------- classify
def classify(args) -> int:  # noqa: ANN001
    paths = pipeline.expand_videos(args.videos, allow_folders=True)
    decoding, processor = _early_decoding(args, paths)
    model = pipeline.load_classifier(args.model, args.offline)
    config = model.config
    id2label = pipeline.read_label_names(args.labels, config.num_labels) if args.labels else None
    processor = _prepare(model, args, args.compile, processor)
    errors = ErrorLog("classify")
    dtype_line = _dtype_line(args)
    width = max([len(str(p)) for p in paths] + [5])
    header = args.format == "table"  # printed before the first result, so a failure alone prints only its error
    for result in pipeline.classify_videos(paths, model, processor, id2label=id2label, decoding=decoding,
                                           **_run_options(args)):
        if not result.ok:
            errors(result.error)
            continue
        dtype_line()
        top = result.top_k(args.top_k)
        if args.format == "jsonl":
            record = {"video": str(result.path), "clips": result.num_clips,
                      "top_k": [{"label": label, "id": i, "score": round(score, 6)} for label, i, score in top]}
            print(json.dumps(record), flush=True)
            continue
        if header:
            print(f"{'video':<{width}}  rank  {'label':<24} score")
            header = False
        for rank, (label, _, score) in enumerate(top, start=1):
            name = str(result.path) if rank == 1 else ""
            print(f"{name:<{width}}  {rank:>4}  {label:<24} {score:.4f}", flush=True)
    return 1 if errors.count else 0


# --------------------------------------------------------------------------- embed
def embed(args) -> int:  # noqa: ANN001
    if args.engine == "ray":
        if args.dtype == "float8":
            raise ValueError("--dtype float8: not with --engine ray (its actors load the model in bf16 or fp32)")
        return _embed_ray(args)
    for flag, value in (("--address", args.address), ("--shard-size", args.shard_size), ("--actors", args.actors)):
        if value is not None:
            raise ValueError(f"{flag}: only with --engine ray")
    out = check_feature_path(args.out)
    if args.features == "tokens" and out.suffix.lower() != ".parquet":
        raise ValueError(f"--out {out}: the token grid is written per clip, to a .parquet file")
    paths = pipeline.expand_videos(args.videos, allow_folders=True, allow_lists=True)
    parquet = out.suffix.lower() == ".parquet"
    decoding, processor = _early_decoding(args, paths) if not parquet else (None, None)
    model, kind = pipeline.load_feature_model(args.model, args.offline)
    kind = {"auto": kind}.get(args.features, args.features)
    processor = _prepare(model, args, args.compile, processor)
    errors = ErrorLog("embed")
    dtype_line = _dtype_line(args)
    if parquet:
        return _embed_parquet(args, out, paths, model, processor, errors, dtype_line)
    names: list[str] = []
    rows: list[np.ndarray] = []
    for result in pipeline.embed_videos(paths, model, processor, features=args.features, decoding=decoding,
                                        **_run_options(args)):
        if not result.ok:
            errors(result.error)
            continue
        dtype_line()
        names.append(str(result.path))
        rows.append(result.output.numpy())
    if not rows:
        raise ValueError("no video could be read; nothing written")
    matrix = np.stack(rows).astype(np.float32)
    written = write_features(out, names, matrix)
    print(f"{len(names)} videos -> {matrix.shape[1]}-d features ({kind}): {', '.join(map(str, written))}",
          file=sys.stderr)
    return 1 if errors.count else 0


def _embed_parquet(args, out, paths, model, processor, errors: ErrorLog, dtype_line: OnceLine) -> int:  # noqa: ANN001
    options = _run_options(args)
    done = clips = 0
    for result in embed_to_parquet(paths, model, processor, out, model_id=args.model, kind=args.features,
                                   sampling_rate=options.pop("sampling_rate"), num_clips=options.pop("num_clips"),
                                   **options):
        if result.ok:
            dtype_line()
            done += 1
            clips += result.num_clips
        else:
            errors(result.error)
    print(f"{done} videos -> {clips} rows of {args.features} features: {out}", file=sys.stderr)
    return 1 if errors.count else 0


def _embed_ray(args) -> int:  # noqa: ANN001
    from ..ray_engine import embed_with_ray

    out = Path(args.out)
    if out.suffix.lower() in (".npy", ".npz"):
        raise ValueError(f"--out {out}: --engine ray writes a folder of Parquet shards; give a folder")
    paths = pipeline.expand_videos(args.videos, allow_folders=True, allow_lists=True)
    errors = ErrorLog("embed")
    shards = videos = clips = 0
    for result in embed_with_ray(paths, args.model, out, kind=args.features, offline=args.offline,
                                 sampling_rate=args.sampling_rate, num_clips=args.num_clips, batch_size=args.batch_size,
                                 shard_size=args.shard_size, device=args.device, dtype=args.dtype, actors=args.actors,
                                 compile_blocks=args.compile, address=args.address, progress=args.progress):
        for message in result.errors:
            errors(message)
        shards += 1
        videos += result.videos
        clips += result.clips
    print(f"{videos} videos -> {clips} rows of {args.features} features in {shards} new shards: {out}",
          file=sys.stderr)
    return 1 if errors.count else 0


# --------------------------------------------------------------------------- reconstruct
def reconstruct(args) -> int:  # noqa: ANN001
    from .. import visualize

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise ValueError(f"--out {out}: the grid is written as a PNG; give a .png file name")
    [path] = pipeline.expand_videos([args.video], allow_folders=False)
    model = pipeline.load_pretraining_model(args.model, args.offline)
    processor = _prepare(model, args)
    config = model.config
    rate = args.sampling_rate or pipeline.checkpoint_sampling_rate(config) or pipeline.DEFAULT_SAMPLING_RATE
    pixels = pipeline.load_clips(path, processor, config.num_frames, rate, 1)
    rec = visualize.reconstruct_clip(model, pixels, args.mask_ratio, args.seed, processor.image_mean,
                                     processor.image_std)
    written = [visualize.save_reconstruction_png(rec, out, scale=args.scale)]
    if args.gif:
        written.append(visualize.save_reconstruction_gif(rec, args.gif, fps=args.fps, scale=args.scale))
    if args.mp4:
        written.append(visualize.save_reconstruction_mp4(rec, args.mp4, fps=max(1, round(args.fps)), scale=args.scale))
    print(f"{path}: {args.mask_ratio:.0%} of tubelets masked (seed {args.seed}); wrote {', '.join(map(str, written))}",
          file=sys.stderr)
    return 0


def add_model_arguments(parser, batch: bool = True) -> None:  # noqa: ANN001
    """Flags shared by the commands that run a model on videos."""
    parser.add_argument("--model", required=True, metavar="PATH_OR_ID",
                        help="model folder (config.json + weights), hub repo id, or original .pth checkpoint")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N "
                                                         "(default: auto)")
    parser.add_argument("--sampling-rate", type=_positive, default=None, metavar="N",
                        help=f"take every N-th frame (default: the rate the model was trained with, recorded in its "
                             f"config.json as {pipeline.SAMPLING_RATE_KEY!r}; else {pipeline.DEFAULT_SAMPLING_RATE}; "
                             f"lowered for videos too short for one clip)")
    parser.add_argument("--offline", action="store_true",
                        help="never reach the Hugging Face hub; use the local cache only")
    if batch:
        parser.add_argument("--num-clips", type=_positive, default=4, metavar="N",
                            help="clips per video, evenly spaced in time; their outputs are averaged (default: 4)")
        parser.add_argument("--batch-size", type=_positive, default=None, metavar="N",
                            help="clips per forward pass; clips of several videos share one (default: 8 on a GPU; "
                                 "on the CPU one video's clips, so the model runs on a video while the next decodes)")
        parser.add_argument("--num-workers", "--workers", dest="num_workers", type=int,
                            default=default_num_workers(), metavar="N",
                            help="processes decoding videos ahead of the model; 0 decodes in this process "
                                 "(default: the CPUs this process may use, but one)")
        parser.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16", "float8"),
                            help="compute precision (default: auto = bfloat16 on CUDA and on CPUs with bf16 matrix "
                                 "units, AMX or AVX512-BF16; float32 on other CPUs; float8: the blocks' linear "
                                 "layers in FP8, on GPUs with FP8 units, best with --compile; at ViT-B's width "
                                 "not faster than bfloat16 yet: 0.92-0.94x on an H200)")
        parser.add_argument("--compile", action="store_true",
                            help="torch.compile the transformer blocks (worth it for many videos on a GPU)")
        parser.add_argument("--decoder", choices=("pyav", *GPU_DECODERS), default="pyav",
                            help="pyav: CPU decoding in --num-workers processes (default); nvdec: the GPU's decoder "
                                 "in --num-workers threads (needs CUDA and `pip install videomae[gpu]`; 8 threads "
                                 "were the best on an H200)")
        parser.add_argument("--frame-stride", type=_positive, default=None, metavar="S",
                            help="the videos keep every S-th source frame (`videomae prep --frame-stride S`), so a "
                                 "clip takes every (rate / S)-th stored one (default: read from the prep.json that "
                                 "`videomae prep` writes above its videos; 1 for videos not prepared)")
        parser.add_argument("--exact-resize", action="store_true",
                            help="resize frames with the processor (transformers' numbers, PIL's filter) instead of "
                                 "in the decoder's colour conversion (the default: about 1.8x less decoding work, "
                                 "FFmpeg's bilinear filter, pixels within a few levels)")
        parser.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                            help="no progress bar (default: a bar with videos/s on stderr when it is a terminal)")


def add_engine_arguments(parser) -> None:  # noqa: ANN001
    """`embed`'s choice of engine and the Ray engine's flags."""
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: this process and its decoding workers; ray: Ray Data on a Ray cluster, decoding "
                             "in CPU tasks and the model in actors (a GPU each where there are GPUs), written and "
                             "resumed shard by shard (needs pip install 'videomae[ray]') (default: local)")
    parser.add_argument("--address", default=None, metavar="ADDR",
                        help="--engine ray: the cluster to join: HEAD:6379, or auto (RAY_ADDRESS, else the one "
                             "`ray start` runs on this machine) (default: as auto, but a local Ray is started for "
                             "this run where there is no cluster)")
    parser.add_argument("--shard-size", type=_positive, default=None, metavar="N",
                        help="--engine ray: videos per output shard; the sorted inputs are cut into shards of N, so a "
                             "rerun finds the same ones (default: 256; 16 for --features tokens)")
    parser.add_argument("--actors", type=_positive, default=None, metavar="N",
                        help="--engine ray: model actors (default: one per GPU of the cluster, each with a CPU; "
                             "without GPUs a quarter of its CPUs' count, with CPUs / actors threads each, beside the "
                             "decoding tasks that take every CPU)")


def _positive(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


__all__ = ["classify", "embed", "reconstruct", "add_model_arguments", "add_engine_arguments"]
