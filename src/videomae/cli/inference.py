"""`classify`, `embed` and `reconstruct`: a model applied to video files.

Videos are decoded and preprocessed in a small thread pool while the model runs on the
previous batch (PyAV releases the GIL while it decodes). Clips from several videos share a
batch; each video's clip scores or features are averaged afterwards.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import CONFIG_NAME, VideoMAEConfig
from ..hub import resolve_file

logger = logging.getLogger("videomae.cli")


# --------------------------------------------------------------------------- devices, models
@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence the loader's missing / unused weight messages where the command checks the
    loading info itself and says what is wrong in its own words."""
    loader = logging.getLogger("videomae.pretrained")
    previous = loader.level
    loader.setLevel(logging.ERROR)
    try:
        yield
    finally:
        loader.setLevel(previous)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name!r}: expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available here; use --device cpu")
    return device


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def model_architectures(model: str, offline: bool = False) -> list[str]:
    """The `architectures` recorded in a model's config.json ([] for a .pth or none recorded)."""
    if Path(model).is_file():
        sibling = Path(model).parent / CONFIG_NAME
        return list(VideoMAEConfig.from_json_file(sibling).extra.get("architectures", [])) if sibling.is_file() else []
    path = resolve_file(model, CONFIG_NAME, required=False, local_files_only=offline)
    if path is None:
        return []
    return list(VideoMAEConfig.from_json_file(path).extra.get("architectures", []))


def load_processor(model: str, config: VideoMAEConfig, offline: bool = False):  # noqa: ANN201
    """The model's preprocessor_config.json, or a guess at the model's size (a warning)."""
    from ..processing import VideoMAEImageProcessor, guess_processor

    folder = Path(model).parent if Path(model).is_file() else model
    try:
        return VideoMAEImageProcessor.from_pretrained(folder, local_files_only=offline)
    except (OSError, ValueError) as err:
        return guess_processor(model, config.image_hw, str(err))  # ImageNet's for original checkpoints


# --------------------------------------------------------------------------- videos
def expand_videos(inputs: Sequence[str], allow_folders: bool) -> list[Path]:
    """Files as given; folders (where allowed) searched recursively for videos. A missing path
    is an error before any model is loaded."""
    from ..data.datasets import find_videos

    out: list[Path] = []
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            if not allow_folders:
                raise ValueError(f"{path}: is a folder; give video files")
            found = find_videos(path)
            if not found:
                raise FileNotFoundError(f"{path}: no video files in this folder")
            out.extend(found)
        elif path.is_file():
            out.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file")
    return out


def clip_indices(num_video_frames: int, clip_len: int, sampling_rate: int, num_clips: int) -> np.ndarray:
    """`num_clips` evenly spaced clips (num_clips, clip_len). A video too short for the rate is
    sampled at the largest rate that still fits a whole clip (at least 1)."""
    from ..sampling import multi_clip_indices

    rate = max(1, min(sampling_rate, num_video_frames // clip_len))
    return multi_clip_indices(clip_len, rate, num_video_frames, num_clips)


@dataclass
class LoadedVideo:
    path: Path
    pixel_values: torch.Tensor | None  # (clips, T, C, H, W) float32
    error: str | None = None


def load_clips(path: Path, processor, clip_len: int, sampling_rate: int, num_clips: int) -> LoadedVideo:  # noqa: ANN001
    from ..video import probe_video, read_video

    try:
        info = probe_video(path)
        indices = clip_indices(info.num_frames, clip_len, sampling_rate, num_clips)
        frames = read_video(path, indices.reshape(-1))  # (clips * T, H, W, 3) uint8
        clips = list(frames.reshape(num_clips, clip_len, *frames.shape[1:]))
        pixels = processor(clips, return_tensors="pt")["pixel_values"]
    except (ValueError, OSError, RuntimeError) as err:  # VideoDecodeError is a ValueError
        message = str(err)
        if str(path) not in message:
            message = f"{path}: {message}"
        return LoadedVideo(path, None, message)
    return LoadedVideo(path, pixels)


def iter_videos(paths: Sequence[Path], processor, clip_len: int, sampling_rate: int, num_clips: int,  # noqa: ANN001
                workers: int = 2) -> Iterator[LoadedVideo]:
    """Decode ahead of use, in order, keeping a bounded number of videos in flight."""
    with ThreadPoolExecutor(max(1, workers)) as pool:
        pending = []
        for path in paths:
            pending.append(pool.submit(load_clips, path, processor, clip_len, sampling_rate, num_clips))
            if len(pending) > 2 * workers:
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()


def batched_clips(videos: Iterable[LoadedVideo], batch_size: int, on_error) -> Iterator[tuple[torch.Tensor, list[tuple[Path, int]]]]:  # noqa: ANN001,E501
    """Pack the clips of consecutive videos into batches of at most `batch_size` clips.

    Yields (pixel_values, owners): owners[i] = (video, number of its clips in this batch),
    in order; a video's clips may straddle two batches.
    """
    pending: list[torch.Tensor] = []
    owners: list[tuple[Path, int]] = []
    size = 0
    for video in videos:
        if video.error is not None:
            on_error(video.error)
            continue
        clips = video.pixel_values
        start = 0
        while start < clips.shape[0]:
            take = min(batch_size - size, clips.shape[0] - start)
            pending.append(clips[start:start + take])
            owners.append((video.path, take))
            size += take
            start += take
            if size == batch_size:
                yield torch.cat(pending), owners
                pending, owners, size = [], [], 0
    if pending:
        yield torch.cat(pending), owners


def per_video(results: Iterable[tuple[torch.Tensor, list[tuple[Path, int]]]]) -> Iterator[tuple[Path, torch.Tensor]]:
    """Regroup per-clip rows (as batches came) into (video, rows of all its clips)."""
    current: Path | None = None
    rows: list[torch.Tensor] = []
    for values, owners in results:
        offset = 0
        for path, count in owners:
            if current is not None and path != current:
                yield current, torch.cat(rows)
                rows = []
            current = path
            rows.append(values[offset:offset + count])
            offset += count
    if current is not None:
        yield current, torch.cat(rows)


class ErrorLog:
    """Collects per-video errors: each printed as one line at once; the command then fails."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.count = 0

    def __call__(self, message: str) -> None:
        self.count += 1
        print(f"videomae {self.command}: error: {message}", file=sys.stderr, flush=True)


def _autocast(device: torch.device, dtype: torch.dtype):  # noqa: ANN202
    import contextlib

    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


# --------------------------------------------------------------------------- classify
def classify(args) -> int:  # noqa: ANN001
    from ..modeling import VideoMAEForVideoClassification

    paths = expand_videos(args.videos, allow_folders=True)
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    with quiet_loading():
        model, info = VideoMAEForVideoClassification.from_pretrained(args.model, local_files_only=args.offline,
                                                                     output_loading_info=True)
    if any(k.startswith("classifier.") for k in info["missing_keys"]):
        raise ValueError(f"{args.model}: has no classification head (a pretraining or bare encoder checkpoint); "
                         f"fine-tune it first, or use `videomae embed` for features")
    config = model.config
    if config.problem_type == "regression":
        raise ValueError(f"{args.model}: a regression model, not a classifier")
    model.to(device)
    processor = load_processor(args.model, config, args.offline)
    top_k = max(1, min(args.top_k, config.num_labels))
    errors = ErrorLog("classify")
    multi_label = config.problem_type == "multi_label_classification"

    def scores() -> Iterator[tuple[torch.Tensor, list[tuple[Path, int]]]]:
        videos = iter_videos(paths, processor, config.num_frames, args.sampling_rate, args.num_clips, args.workers)
        for pixels, owners in batched_clips(videos, args.batch_size, errors):
            with torch.inference_mode(), _autocast(device, dtype):
                logits = model(pixels.to(device)).logits.float()
            probs = logits.sigmoid() if multi_label else logits.softmax(dim=-1)
            yield probs.cpu(), owners

    out = sys.stdout
    if args.format == "table":
        width = max([len(str(p)) for p in paths] + [5])
        print(f"{'video':<{width}}  rank  {'label':<24} score", file=out)
    for path, probs in per_video(scores()):
        mean = probs.mean(dim=0)
        values, ids = mean.topk(top_k)
        labels = [config.id2label.get(int(i), str(int(i))) for i in ids]
        if args.format == "jsonl":
            record = {"video": str(path), "clips": int(probs.shape[0]),
                      "top_k": [{"label": lab, "id": int(i), "score": round(float(v), 6)}
                                for lab, i, v in zip(labels, ids, values)]}
            print(json.dumps(record), file=out, flush=True)
        else:
            for rank, (lab, v) in enumerate(zip(labels, values), start=1):
                name = str(path) if rank == 1 else ""
                print(f"{name:<{width}}  {rank:>4}  {lab:<24} {float(v):.4f}", file=out, flush=True)
    return 1 if errors.count else 0


# --------------------------------------------------------------------------- embed
def load_feature_model(model: str, offline: bool):  # noqa: ANN201
    """A classifier (features = fc_norm(mean of tokens)) when the checkpoint is one, else the
    encoder (features = mean of the last hidden states)."""
    from ..modeling import VideoMAEForVideoClassification, VideoMAEModel

    if "VideoMAEForVideoClassification" in model_architectures(model, offline):
        return VideoMAEForVideoClassification.from_pretrained(model, local_files_only=offline), "pooled (fc_norm)"
    with quiet_loading():
        net, info = VideoMAEModel.from_pretrained(model, local_files_only=offline, output_loading_info=True)
    if any(k.startswith("classifier.") for k in info["unexpected_keys"]):
        return VideoMAEForVideoClassification.from_pretrained(model, local_files_only=offline), "pooled (fc_norm)"
    return net, "mean of encoder tokens"


def features(model, pixels: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
    """(B, T, C, H, W) -> (B, hidden_size)."""
    from ..modeling import VideoMAEForVideoClassification

    if isinstance(model, VideoMAEForVideoClassification):
        pooled, _ = model.forward_features(pixels)
        return pooled
    return model(pixels).last_hidden_state.mean(dim=1)


def write_features(out: Path, names: list[str], matrix: np.ndarray) -> list[Path]:
    """.npy (+ .txt of names), .npz (features, names) or .parquet (name, features)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix == ".npy":
        np.save(out, matrix)
        names_path = out.with_suffix(".txt")
        names_path.write_text("".join(n + "\n" for n in names))
        return [out, names_path]
    if suffix == ".npz":
        np.savez(out, features=matrix, names=np.array(names))
        return [out]
    if suffix == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ValueError(f"{out}: writing .parquet needs pyarrow (pip install pyarrow); "
                             f"or choose .npy or .npz") from None
        column = pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), matrix.shape[1])
        pq.write_table(pa.table({"video": pa.array(names), "features": column}), out)
        return [out]
    raise ValueError(f"--out {out}: unknown format {suffix or '(no extension)'}; use .npy, .npz or .parquet")


def embed(args) -> int:  # noqa: ANN001
    out = Path(args.out)
    if out.suffix.lower() not in (".npy", ".npz", ".parquet"):
        raise ValueError(f"--out {out}: unknown format {out.suffix or '(no extension)'}; use .npy, .npz or .parquet")
    if out.suffix.lower() == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ValueError(f"--out {out}: writing .parquet needs pyarrow (pip install pyarrow); "
                             f"or choose .npy or .npz") from None
    paths = expand_videos(args.videos, allow_folders=True)
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    model, kind = load_feature_model(args.model, args.offline)
    model.to(device)
    config = model.config
    processor = load_processor(args.model, config, args.offline)
    errors = ErrorLog("embed")

    def clip_features() -> Iterator[tuple[torch.Tensor, list[tuple[Path, int]]]]:
        videos = iter_videos(paths, processor, config.num_frames, args.sampling_rate, args.num_clips, args.workers)
        for pixels, owners in batched_clips(videos, args.batch_size, errors):
            with torch.inference_mode(), _autocast(device, dtype):
                yield features(model, pixels.to(device)).float().cpu(), owners

    names: list[str] = []
    rows: list[np.ndarray] = []
    for path, feats in per_video(clip_features()):
        names.append(str(path))
        rows.append(feats.mean(dim=0).numpy())
    if not rows:
        raise ValueError("no video could be read; nothing written")
    matrix = np.stack(rows).astype(np.float32)
    written = write_features(out, names, matrix)
    print(f"{len(names)} videos -> {matrix.shape[1]}-d features ({kind}): {', '.join(map(str, written))}",
          file=sys.stderr)
    return 1 if errors.count else 0


# --------------------------------------------------------------------------- reconstruct
def reconstruct(args) -> int:  # noqa: ANN001
    from ..modeling import VideoMAEForPreTraining
    from .. import visualize

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise ValueError(f"--out {out}: the grid is written as a PNG; give a .png file name")
    [path] = expand_videos([args.video], allow_folders=False)
    device = resolve_device(args.device)
    with quiet_loading():
        model, info = VideoMAEForPreTraining.from_pretrained(args.model, local_files_only=args.offline,
                                                             output_loading_info=True)
    if any(k.startswith(("decoder.", "encoder_to_decoder", "mask_token")) for k in info["missing_keys"]):
        raise ValueError(f"{args.model}: has no pretraining decoder, so it cannot reconstruct; give a "
                         f"pretraining checkpoint (VideoMAEForPreTraining)")
    model.to(device)
    config = model.config
    processor = load_processor(args.model, config, args.offline)
    video = load_clips(path, processor, config.num_frames, args.sampling_rate, 1)
    if video.error is not None:
        raise ValueError(video.error)
    rec = visualize.reconstruct_clip(model, video.pixel_values, args.mask_ratio, args.seed, processor.image_mean,
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
    parser.add_argument("--sampling-rate", type=int, default=4, metavar="N",
                        help="take every N-th frame (default: 4; lowered for videos too short for one clip)")
    parser.add_argument("--offline", action="store_true",
                        help="never reach the Hugging Face hub; use the local cache only")
    if batch:
        parser.add_argument("--num-clips", type=int, default=4, metavar="N",
                            help="clips per video, evenly spaced in time; their outputs are averaged (default: 4)")
        parser.add_argument("--batch-size", type=int, default=8, metavar="N",
                            help="clips per forward pass (default: 8)")
        parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), metavar="N",
                            help="threads decoding videos ahead of the model (default: min(4, CPUs))")
        parser.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"),
                            help="compute precision (default: auto = bfloat16 on CUDA, float32 on CPU)")


__all__ = ["classify", "embed", "reconstruct", "add_model_arguments"]
