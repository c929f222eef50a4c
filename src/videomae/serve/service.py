"""What the HTTP service does with a video, without HTTP: load a model, decode a file into
clips, run batches of clips, turn reconstructions into pictures.

Each failure a client can cause is a `ServeError` carrying the HTTP status that says so:
413 too large, 415 not a video container, 422 a video that does not decode, 403 a path
outside the data root, 409 a task this checkpoint cannot do. `videomae.serve.app` only
turns them into answers.
"""

from __future__ import annotations

import base64
import io
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import pipeline
from ..devices import autocast, resolve_device, resolve_dtype
from ..video import probe_video, read_video
from .batching import Job

logger = logging.getLogger(__name__)

TASKS = ("classify", "embed", "reconstruct")


class ServeError(Exception):
    """A request the service refuses, with the HTTP status and the reason for the client."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# --------------------------------------------------------------------------- the model
@dataclass
class LoadedModel:
    """A checkpoint ready to serve: the network, what it can do, and how its inputs are made."""

    name: str
    net: nn.Module
    tasks: tuple[str, ...]
    processor: pipeline.VideoMAEImageProcessor
    sampling_rate: int
    id2label: dict[int, str]
    device: torch.device
    dtype: torch.dtype

    @property
    def config(self):  # noqa: ANN201
        return self.net.config


def load_model(model: str, device: str = "auto", dtype: str = "auto", offline: bool = False) -> LoadedModel:
    """A classifier serves classify and embed; a pretraining checkpoint (with its decoder)
    embed and reconstruct; a bare encoder embed only."""
    from ..modeling import VideoMAEForPreTraining, VideoMAEForVideoClassification

    architectures = pipeline.model_architectures(model, offline)
    net: nn.Module | None = None
    if "VideoMAEForPreTraining" in architectures:
        net = pipeline.load_pretraining_model(model, offline)
    else:
        net, _ = pipeline.load_feature_model(model, offline)
        if not isinstance(net, VideoMAEForVideoClassification) and not architectures:
            try:  # a .pth without config.json: it may hold a decoder
                net = pipeline.load_pretraining_model(model, offline)
            except ValueError:
                pass
    if isinstance(net, VideoMAEForVideoClassification):
        tasks: tuple[str, ...] = ("classify", "embed")
    elif isinstance(net, VideoMAEForPreTraining):
        tasks = ("embed", "reconstruct")
    else:
        tasks = ("embed",)
    resolved = resolve_device(device)
    net = net.to(resolved).eval()
    config = net.config
    return LoadedModel(
        name=model, net=net, tasks=tasks, processor=pipeline.load_processor(model, config, offline),
        sampling_rate=pipeline.checkpoint_sampling_rate(config) or pipeline.DEFAULT_SAMPLING_RATE,
        id2label={int(k): str(v) for k, v in config.id2label.items()} if "classify" in tasks else {},
        device=resolved, dtype=resolve_dtype(dtype, resolved))


def describe(model: LoadedModel, num_clips: int) -> dict:
    """What `GET /v1/model` answers: enough for a client to know what it is talking to."""
    config = model.config
    return {
        "model": model.name,
        "architecture": type(model.net).__name__,
        "tasks": list(model.tasks),
        "labels": {str(k): v for k, v in sorted(model.id2label.items())},
        "clip": {"num_frames": config.num_frames, "sampling_rate": model.sampling_rate, "num_clips": num_clips},
        "preprocessing": model.processor.to_dict(),
        "config": config.to_dict(),
        "device": str(model.device),
        "dtype": str(model.dtype).removeprefix("torch."),
    }


# --------------------------------------------------------------------------- decoding
@dataclass
class DecodedClips:
    """One request's video as the model's input before normalising."""

    clips: torch.Tensor  # (num_clips, T, C, H, W) uint8, resized and cropped
    times: list[tuple[float, float]]  # each clip's first and last frame, in seconds
    num_frames: int
    fps: float
    width: int
    height: int


def check_container(path: Path, name: str) -> None:
    """415 unless FFmpeg opens the file as a container holding a video stream; decoding is not
    tried here, so a video with broken frames passes (and becomes a 422 later)."""
    import av

    try:
        with av.open(os.fspath(path), mode="r", timeout=30.0) as container:
            kinds = [stream.type for stream in container.streams]
            if not container.streams.video:
                raise ServeError(415, f"{name}: no video stream (streams: {kinds or 'none'})")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
        reason = str(err).replace(os.fspath(path), name)
        raise ServeError(415, f"{name}: not a video container ({reason})") from None


def decode(path: Path, model: LoadedModel, num_clips: int, name: str) -> DecodedClips:
    """`num_clips` evenly spaced clips of a video, as `videomae classify` takes them.

    A file that is not a container with a video stream is a 415 (`check_container`); one that
    is but does not decode (corrupt or truncated frames, an unknown codec) a 422. `name` is
    what the client calls the file, for the messages: a temporary path means nothing to it."""
    clip_len = model.config.num_frames
    check_container(path, name)
    chosen: list[tuple[int, np.ndarray]] = []  # (frames in the video, (num_clips, T) indices)

    def pick(total: int) -> np.ndarray:
        chosen.append((total, pipeline.clip_indices(total, clip_len, model.sampling_rate, num_clips)))
        return chosen[0][1].reshape(-1)

    try:
        info = probe_video(path, count_frames=False)
        frames = read_video(path, pick)  # (num_clips * T, H, W, 3)
        clips = list(frames.reshape(num_clips, clip_len, *frames.shape[1:]))  # (T, H, W, 3) each
        pixels = model.processor(clips, do_rescale=False, do_normalize=False, input_data_format="channels_last",
                                 return_tensors="pt")["pixel_values"]
    except (ValueError, OSError, RuntimeError) as err:
        raise ServeError(422, f"the video does not decode: {str(err).replace(os.fspath(path), name)}") from None
    total, indices = chosen[0]
    fps = info.fps or 1.0
    times = [(round(float(row[0]) / fps, 3), round(float(row[-1] + 1) / fps, 3)) for row in indices]
    return DecodedClips(pixels, times, total, info.fps, info.width, info.height)


def frames_png(clips: torch.Tensor) -> str:
    """The first clip's frames side by side as a PNG data URL: what the model saw, before
    normalising."""
    from PIL import Image

    frames = clips[0].permute(0, 2, 3, 1).numpy()  # (T, H, W, C)
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    gap = np.full((frames.shape[1], 2, 3), 255, np.uint8)
    strip = np.concatenate([part for frame in frames for part in (frame, gap)][:-1], axis=1)
    buffer = io.BytesIO()
    Image.fromarray(strip).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# --------------------------------------------------------------------------- batches
@dataclass
class ReconstructRequest:
    clips: torch.Tensor  # (1, T, C, H, W) uint8
    mask_ratio: float
    seed: int


class Runner:
    """The batch function of the `Batcher`: one call per batch of jobs of one kind, on the
    model's device, in chunks of at most `max_clips` clips."""

    def __init__(self, model: LoadedModel, max_clips: int) -> None:
        self.model = model
        self.max_clips = max_clips
        net = model.net
        multi_label = getattr(net.config, "problem_type", None) == "multi_label_classification"
        if "classify" in model.tasks:
            def classify(pixels: torch.Tensor) -> torch.Tensor:
                logits = net(pixels).logits.float()
                return logits.sigmoid() if multi_label else logits.softmax(dim=-1)
            self.forward = {"classify": classify}
        else:
            self.forward = {}
        encoder = net.videomae if "reconstruct" in model.tasks else net
        self.forward["embed"] = lambda pixels: pipeline.video_features(encoder, pixels)

    def __call__(self, kind: str, jobs: Sequence[Job]) -> list:
        if kind == "reconstruct":
            return [self.reconstruct(job.payload) for job in jobs]
        clips = torch.cat([job.payload for job in jobs])  # (N, T, C, H, W) uint8
        outputs = torch.cat([self.run(self.forward[kind], chunk) for chunk in clips.split(self.max_clips)])
        return list(outputs.split([job.size for job in jobs]))

    def run(self, forward, clips: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        model = self.model
        pixels = pipeline.normalize(clips.to(model.device), model.processor)
        with torch.inference_mode(), autocast(model.device, model.dtype):
            return forward(pixels).float().cpu()

    def reconstruct(self, request: ReconstructRequest):  # noqa: ANN201
        from ..visualize import reconstruct_clip

        model = self.model
        pixels = pipeline.normalize(request.clips.to(model.device), model.processor)
        processor = model.processor
        with torch.inference_mode():
            return reconstruct_clip(model.net, pixels, request.mask_ratio, request.seed, processor.image_mean,
                                    processor.image_std)


def reconstruction_file(rec, fmt: str, folder: Path, fps: float = 4.0) -> bytes:  # noqa: ANN001
    """The reconstruction as GIF, MP4 or PNG bytes (original | masked | reconstruction)."""
    import tempfile

    from .. import visualize

    handle, name = tempfile.mkstemp(suffix=f".{fmt}", prefix="reconstruction-", dir=folder)
    os.close(handle)
    path = Path(name)
    try:
        if fmt == "gif":
            visualize.save_reconstruction_gif(rec, path, fps=fps)
        elif fmt == "mp4":
            visualize.save_reconstruction_mp4(rec, path, fps=max(1, round(fps)))
        else:
            visualize.save_reconstruction_png(rec, path)
        return path.read_bytes()
    finally:
        path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- paths
def resolve_under(root: Path | None, text: str) -> Path:
    """A client's path, refused (403) unless it names a file inside `root` once every
    symbolic link is followed; `..` is refused before looking at the disk."""
    if root is None:
        raise ServeError(403, "paths are not accepted: the server was started without --data-root")
    if not isinstance(text, str) or not text or "\x00" in text:
        raise ServeError(400, "'path' must be a non-empty string")
    relative = Path(text)
    if ".." in relative.parts:
        raise ServeError(403, f"{text}: '..' is not allowed in a path")
    base = root.resolve()
    candidate = relative if relative.is_absolute() else base / relative
    try:
        resolved = candidate.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError):
        raise ServeError(404, f"{text}: no such file under the data root") from None
    except (OSError, RuntimeError) as err:  # a symlink loop
        raise ServeError(403, f"{text}: cannot be resolved ({err.__class__.__name__})") from None
    if not resolved.is_relative_to(base):
        raise ServeError(403, f"{text}: outside the data root")
    if not resolved.is_file():
        raise ServeError(400, f"{text}: not a file")
    return resolved


__all__ = ["ServeError", "LoadedModel", "load_model", "describe", "DecodedClips", "decode", "frames_png", "Runner",
           "ReconstructRequest", "check_container", "reconstruction_file", "resolve_under", "TASKS"]
