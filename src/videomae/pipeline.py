"""A model applied to many video files: `classify_videos` and `embed_videos`.

    paths -> [worker processes: decode uniform clips, resize and crop, uint8]
          -> [this process: pack clips of several videos into batches of `batch_size`,
              normalise on the model's device, run the model]
          -> one `VideoResult` per video, averaged over its clips, in the order of `paths`

Decoding is the slow part, so it runs in a torch DataLoader's worker processes (PyAV holds
the GIL for part of its work, so threads did not scale); clips travel between processes as
uint8, a quarter of the bytes of float32. A video that cannot be read becomes a result
with an `error`, in its place in the order: one bad file never stops the run.

Decoding is pluggable: `decoder=` takes any function with `read_video`'s signature (path,
frame-index picker -> (frames, H, W, 3) uint8), e.g. a GPU decoder; clip selection stays here.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .config import VideoMAEConfig
from .data.gpu_decoders import GPU_DECODERS, gpu_decoder
from .devices import autocast, default_num_workers, forward_streams, one_thread_worker, resolve_device, resolve_dtype
from .loading import (SAMPLING_RATE_KEY, checkpoint_sampling_rate, load_classifier, load_feature_model,  # noqa: F401
                      load_pretraining_model, load_processor, model_architectures, quiet_loading,
                      read_config, read_label_names)
from .processing import VideoMAEImageProcessor

logger = logging.getLogger(__name__)

DEFAULT_SAMPLING_RATE = 4  # the paper's Kinetics setting; used when a checkpoint records none

_READ_ERRORS = (ValueError, OSError, RuntimeError)  # VideoDecodeError is a ValueError


# --------------------------------------------------------------------------- videos and clips
def expand_videos(inputs: Sequence[str | os.PathLike], allow_folders: bool, allow_lists: bool = False) -> list[Path]:
    """Files as given; folders (where allowed) searched recursively for videos; with
    `allow_lists`, a .txt / .csv / .parquet file read as a list of videos (`read_video_paths`).
    A missing path is an error before any model is loaded."""
    from .data.datasets import LIST_SUFFIXES, find_videos, read_video_paths

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
        elif path.is_file() and allow_lists and path.suffix.lower() in LIST_SUFFIXES:
            listed = read_video_paths(path)
            if not listed:
                raise ValueError(f"{path}: the list names no videos")
            out.extend(Path(p) for p in listed)
        elif path.is_file():
            out.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file")
    return out


def clip_indices(num_video_frames: int, clip_len: int, sampling_rate: int, num_clips: int) -> np.ndarray:
    """`num_clips` evenly spaced clips (num_clips, clip_len). A video too short for the rate is
    sampled at the largest rate that still fits a whole clip (at least 1)."""
    from .sampling import multi_clip_indices

    rate = max(1, min(sampling_rate, num_video_frames // clip_len))
    return multi_clip_indices(clip_len, rate, num_video_frames, num_clips)


def stored_rate(path: str | os.PathLike, sampling_rate: int, frame_stride: int | None = None) -> int:
    """The clip stride in the video's stored frames for `sampling_rate` source frames: the
    video keeps every `frame_stride`-th frame (None: its prep.json's, else 1)."""
    from .data.datasets import stored_sampling_rate
    from .prep import video_frame_stride

    return stored_sampling_rate(sampling_rate, frame_stride or video_frame_stride(path))


class FrameDecoder(Protocol):
    """`read_video`'s signature: decode the frames a picker chooses from the frame count.

    Returns (len(indices), H, W, 3) uint8, in the order of the indices. Raises ValueError,
    OSError or RuntimeError for a file it cannot read. A GPU decoder with this signature can
    replace the default (use num_workers=0 when it must run in this process)."""

    def __call__(self, path: Path, indices: Callable[[int], np.ndarray]) -> torch.Tensor: ...


def _read_video(path: Path, indices: Callable[[int], np.ndarray], resize: int | None = None) -> torch.Tensor:
    from .video import read_video

    return read_video(path, indices, resize=resize)


def decoder_short_side(processor: VideoMAEImageProcessor) -> int | None:
    """The shorter side the processor resizes to, when its resize is one the decoder can do
    instead (a `shortest_edge` resize); None otherwise."""
    size = processor.size or {}
    if processor.do_resize and set(size) == {"shortest_edge"}:
        return int(size["shortest_edge"])
    return None


@dataclass
class DecodedVideo:
    """One video's clips as the model's input before normalising, or why there are none."""

    index: int  # position in the input list
    path: Path
    clips: torch.Tensor | None  # (num_clips, T, C, H, W) uint8, resized and cropped
    error: str | None = None

    def pin_memory(self) -> DecodedVideo:  # the DataLoader's pin_memory calls this
        return DecodedVideo(self.index, self.path, None if self.clips is None else self.clips.pin_memory(), self.error)


class VideoClips(Dataset):
    """Item i: `num_clips` uniform clips of video i, resized and cropped by the processor (in
    uint8), or the reason it cannot be read. Never raises for a bad file.

    `sampling_rate` counts source frames. Videos that `videomae prep --frame-stride S` wrote keep
    every S-th frame, so a clip takes every (rate / S)-th stored one: S from `frame_stride`, or
    when None from each video's prep.json (`video_frame_stride`)."""

    def __init__(self, paths: Sequence[Path], processor: VideoMAEImageProcessor, clip_len: int, sampling_rate: int,
                 num_clips: int, decoder: FrameDecoder | None = None, decoder_resize: bool = False,
                 frame_stride: int | None = None) -> None:
        if clip_len < 1 or sampling_rate < 1 or num_clips < 1:
            raise ValueError(f"clip_len, sampling_rate and num_clips must be >= 1, got {clip_len}, {sampling_rate}, "
                             f"{num_clips}")
        self.paths = [Path(p) for p in paths]
        self.processor = processor
        self.clip_len = clip_len
        self.sampling_rate = sampling_rate
        self.frame_stride = frame_stride
        self.num_clips = num_clips
        self.decoder = decoder or _read_video
        # The decoder's converter scales while it converts to RGB (one pass, FFmpeg's bilinear)
        # instead of a full-size RGB frame resized by the processor (PIL's filter, transformers'
        # numbers): about 1.8x less work per clip, pixels within a few levels.
        self.short_side = decoder_short_side(processor) if decoder_resize and decoder is None else None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> DecodedVideo:
        path = self.paths[index]
        try:
            return DecodedVideo(index, path, self.clips(path))
        except _READ_ERRORS as err:
            message = str(err)
            return DecodedVideo(index, path, None, message if str(path) in message else f"{path}: {message}")

    def clips(self, path: Path) -> torch.Tensor:
        """(num_clips, T, C, H, W) uint8: the processor's resize and crop, without its rescale and
        normalisation (those run on the model's device, see `normalize`)."""
        rate = stored_rate(path, self.sampling_rate, self.frame_stride)

        def pick(total: int) -> np.ndarray:
            return clip_indices(total, self.clip_len, rate, self.num_clips).reshape(-1)

        if self.short_side is not None:
            frames = _read_video(path, pick, self.short_side)
        else:
            frames = self.decoder(path, pick)
        clips = list(frames.reshape(self.num_clips, self.clip_len, *frames.shape[1:]))  # (T, H, W, 3) each
        return self.processor(clips, do_resize=self.short_side is None, do_rescale=False, do_normalize=False,
                              input_data_format="channels_last", return_tensors="pt")["pixel_values"]


def normalize(clips: torch.Tensor, processor: VideoMAEImageProcessor) -> torch.Tensor:
    """The processor's rescale and normalisation of uint8 clips, on their device, as float32."""
    from . import transforms as T

    if not (processor.do_rescale or processor.do_normalize):
        return clips.float()
    return T.rescale_and_normalize(clips, processor.rescale_factor if processor.do_rescale else None,
                                   processor.image_mean if processor.do_normalize else None,
                                   processor.image_std if processor.do_normalize else None)


def load_clips(path: str | os.PathLike, processor: VideoMAEImageProcessor, clip_len: int, sampling_rate: int,
               num_clips: int = 1) -> torch.Tensor:
    """One video's `num_clips` uniform clips as `pixel_values` (num_clips, T, C, H, W) float32;
    an error naming the file when it cannot be read."""
    video = VideoClips([Path(path)], processor, clip_len, sampling_rate, num_clips)[0]
    if video.error is not None:
        raise ValueError(video.error)
    return normalize(video.clips, processor)


def _as_is(item: DecodedVideo) -> DecodedVideo:
    return item


def decoded_videos(dataset: VideoClips, num_workers: int, pin_memory: bool = False,
                   threads: bool = False, ordered: bool = True) -> Iterable[DecodedVideo]:
    """The dataset's items, decoded `num_workers` processes ahead (0: here, in turn); `threads`:
    threads of this process instead (a GPU decoder, whose CUDA context worker processes cannot
    share; NVDEC and PyAV both release the GIL while decoding).

    `ordered=False` yields each item as it is done (`DecodedVideo.index` says which): one slow
    video then holds back only its own worker. In order, every worker waits once it is two
    items ahead of the slowest (a long file, a far seek).

    `pin_memory`: DataLoader's pinning thread; on an H200's 16 cores it cost 12% of the rate
    (benchmarks/embed_gap.py), so `run_videos` copies unpinned clips to the GPU instead."""
    workers = max(0, min(num_workers, len(dataset)))
    if workers == 0:
        return (dataset[i] for i in range(len(dataset)))
    if threads:
        return _threaded_items(dataset, workers, ordered)
    prefetch, unordered = 2, {}
    if not ordered:  # DataLoader's in_order (torch >= 2.6, looked up: the floor is 2.4) hands each worker new
        if "in_order" in inspect.signature(DataLoader).parameters:  # work as soon as it delivers
            unordered = {"in_order": False}
        else:  # older torch: a deeper queue instead
            prefetch = 4
    return DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers, collate_fn=_as_is,
                      pin_memory=pin_memory, prefetch_factor=prefetch, worker_init_fn=one_thread_worker, **unordered)


def _threaded_items(dataset: VideoClips, workers: int, ordered: bool = True) -> Iterator[DecodedVideo]:
    """Items from `workers` threads, at most 2 * workers decoded ahead; in order, or as done."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    with ThreadPoolExecutor(workers, thread_name_prefix="videomae-decode") as pool:
        pending: deque = deque()

        def take() -> DecodedVideo:  # the oldest item, or (out of order) the first one done
            if ordered:
                return pending.popleft().result()
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            future = next(f for f in pending if f in done)
            pending.remove(future)
            return future.result()

        for index in range(len(dataset)):
            pending.append(pool.submit(dataset.__getitem__, index))
            if len(pending) >= 2 * workers:
                yield take()
        while pending:
            yield take()


@dataclass
class Decoding:
    """Videos decoding ahead of a model, started by `start_decoding`, possibly while the model
    still loads; `run_videos` (and `classify_videos`, `embed_videos`) take it instead of starting
    their own."""

    dataset: VideoClips
    videos: Iterator[DecodedVideo]


def start_decoding(paths: Sequence[str | os.PathLike], processor: VideoMAEImageProcessor, *, clip_len: int,
                   sampling_rate: int, num_clips: int, num_workers: int | None = None,
                   device: str | torch.device = "cpu", decoder: FrameDecoder | str | None = None,
                   decoder_resize: bool = False, frame_stride: int | None = None) -> Decoding:
    """Start decoding the videos' clips for a model on `device` (see `run_videos` for the
    options). Worker processes start now: before CUDA and the model's weights are loaded they
    fork from a small process, and they decode while the model loads."""
    device = resolve_device(device)
    gpu_decoding = decoder in GPU_DECODERS
    if gpu_decoding:
        decoder = gpu_decoder(decoder, device)
    elif decoder == "pyav":
        decoder = None
    elif isinstance(decoder, str):
        raise ValueError(f"decoder must be 'pyav', {', '.join(map(repr, GPU_DECODERS))} or a FrameDecoder, "
                         f"got {decoder!r}")
    dataset = VideoClips([Path(p) for p in paths], processor, clip_len, sampling_rate, num_clips, decoder,
                         decoder_resize, frame_stride)
    workers = default_num_workers() if num_workers is None else num_workers
    videos = decoded_videos(dataset, workers, threads=gpu_decoding, ordered=False)  # run_videos restores the order
    return Decoding(dataset, iter(videos))


def clip_settings(config: VideoMAEConfig, sampling_rate: int | None = None) -> tuple[int, int]:
    """(frames a clip, sampling rate) for a model: `sampling_rate` None takes the one the
    checkpoint records, else 4."""
    return config.num_frames, sampling_rate or checkpoint_sampling_rate(config) or DEFAULT_SAMPLING_RATE


# --------------------------------------------------------------------------- running a model
GPU_BATCH_SIZE = 8  # clips a forward pass on a GPU, where larger batches use it better


def default_batch_size(device: torch.device, num_clips: int) -> int:
    """8 clips on a GPU; on the CPU one video's clips. A CPU gains nothing from batching clips (a
    ViT-B clip is already 1568 tokens a matrix product), and a batch that waits for the clips of
    several videos keeps the model idle while they decode, instead of running on one while the
    next decodes."""
    return GPU_BATCH_SIZE if device.type == "cuda" else num_clips


@dataclass
class VideoResult:
    """One video's outputs: per clip, and their mean; or the error that kept it from the model."""

    path: Path
    clip_outputs: torch.Tensor | None = None  # (num_clips, D) float32 on the CPU
    error: str | None = None
    id2label: dict[int, str] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def num_clips(self) -> int:
        return 0 if self.clip_outputs is None else int(self.clip_outputs.shape[0])

    @property
    def output(self) -> torch.Tensor:
        """(D,): the mean over clips (of probabilities for `classify_videos`, features for
        `embed_videos`)."""
        if self.clip_outputs is None:
            raise ValueError(f"{self.path}: no output ({self.error})")
        return self.clip_outputs.mean(dim=0)

    def top_k(self, k: int) -> list[tuple[str, int, float]]:
        """The k best classes as (label, id, mean score), best first."""
        values, ids = self.output.topk(max(1, min(k, self.output.shape[0])))
        return [(self.id2label.get(int(i), str(int(i))), int(i), float(v)) for v, i in zip(values, ids)]


@dataclass
class _Pending:
    path: Path
    expected: int
    error: str | None = None
    rows: list[torch.Tensor] = field(default_factory=list)
    received: int = 0

    @property
    def done(self) -> bool:
        return self.error is not None or self.received == self.expected


def forward_clips(clips: torch.Tensor, forward: Callable[[torch.Tensor], torch.Tensor],
                  processor: VideoMAEImageProcessor, device: torch.device, dtype: torch.dtype,
                  batch_size: int | None = None) -> torch.Tensor:
    """`forward` on uint8 clips (N, T, C, H, W) -> (N, ...) float32 on the CPU: moved to `device`
    and normalised there (a quarter of the bytes travel), run in `dtype` under inference mode, in
    chunks of `batch_size` clips (None: all at once). Every engine's forward pass goes through here."""
    step = batch_size or max(1, clips.shape[0])
    outputs = []
    for start in range(0, clips.shape[0], step):
        pixels = normalize(clips[start:start + step].to(device, non_blocking=True), processor)
        with torch.inference_mode(), autocast(device, dtype):
            outputs.append(forward(pixels).float().cpu())
    return torch.cat(outputs)


def run_videos(
    paths: Sequence[str | os.PathLike],
    forward: Callable[[torch.Tensor], torch.Tensor],
    processor: VideoMAEImageProcessor,
    *,
    clip_len: int,
    sampling_rate: int = DEFAULT_SAMPLING_RATE,
    num_clips: int = 4,
    batch_size: int | None = None,
    num_workers: int | None = None,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "float32",
    progress: bool | None = False,
    decoder: FrameDecoder | str | None = None,
    id2label: dict[int, str] | None = None,
    decoder_resize: bool = False,
    decoding: Decoding | None = None,
    frame_stride: int | None = None,
) -> Iterator[VideoResult]:
    """`forward` ((B, T, C, H, W) float32 on `device` -> (B, D)) applied to `num_clips` clips of
    every video, in batches of `batch_size` clips that may mix videos. Yields one result per
    path, in order; a video that cannot be read is a result with `error`.

    batch_size: None -> `default_batch_size(device, num_clips)`.
    decoder: None (PyAV in worker processes), "nvdec" (NVDEC on the model's GPU through
    PyNvVideoCodec, in `num_workers` threads of this process; 8 was the best on an H200) or a
    `FrameDecoder`.
    decoder_resize: the PyAV decoder scales frames to the processor's shorter side as it converts
    them (about 1.8x faster decoding; FFmpeg's bilinear filter, so pixels differ from the
    processor's PIL-equal resize by a few levels). False keeps transformers' numbers.
    progress: a bar with videos/s on stderr; None shows it when stderr is a terminal.
    decoding: the same videos already decoding (`start_decoding`); the decoding options above
    are then its own.
    frame_stride: the videos keep every N-th source frame (`videomae prep --frame-stride`); None
    reads each video's from the prep.json above it (1 for videos not prepared). `sampling_rate`
    counts source frames either way.

    On the CPU, batches run in as many threads as torch has, one thread each (torch runs one
    thread an op until the iteration ends): see `devices.forward_streams`.
    """
    device = resolve_device(device)
    batch_size = default_batch_size(device, num_clips) if batch_size is None else batch_size
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    from tqdm.auto import tqdm

    dtype = resolve_dtype(dtype, device)
    if decoding is None:
        decoding = start_decoding(paths, processor, clip_len=clip_len, sampling_rate=sampling_rate,
                                  num_clips=num_clips, num_workers=num_workers, device=device, decoder=decoder,
                                  decoder_resize=decoder_resize, frame_stride=frame_stride)
    elif [str(p) for p in decoding.dataset.paths] != [str(Path(p)) for p in paths]:
        raise ValueError("decoding: started for other videos than these paths")
    dataset, videos = decoding.dataset, decoding.videos
    labels = dict(id2label or {})
    pending: dict[int, _Pending] = {}  # by input position: videos arrive as decoded, results leave in order
    next_out = 0
    batch: list[torch.Tensor] = []
    owners: list[tuple[_Pending, int]] = []
    in_flight: deque[tuple[Future, list[tuple[_Pending, int]]]] = deque()  # oldest first

    def run_forward(clips: list[torch.Tensor]) -> torch.Tensor:  # in the thread that runs it
        return forward_clips(torch.cat(clips), forward, processor, device, dtype)

    def hand_out(out: torch.Tensor, batch_owners: list[tuple[_Pending, int]]) -> None:
        offset = 0
        for owner, count in batch_owners:
            owner.rows.append(out[offset:offset + count])
            owner.received += count
            offset += count

    def collect(wait_for: int) -> None:
        """Hand out finished batches in the order they started (a video's rows stay in order):
        at least `wait_for` of them, then any others already done."""
        while in_flight and (wait_for > 0 or in_flight[0][0].done()):
            future, batch_owners = in_flight.popleft()
            hand_out(future.result(), batch_owners)
            wait_for -= 1

    def run_batch() -> None:
        clips, batch_owners = list(batch), list(owners)
        batch.clear()
        owners.clear()
        if pool is None:
            hand_out(run_forward(clips), batch_owners)
            return
        in_flight.append((pool.submit(run_forward, clips), batch_owners))
        collect(wait_for=len(in_flight) - streams + 1)  # keep at most `streams` running

    def finished() -> Iterator[VideoResult]:
        nonlocal next_out
        collect(wait_for=0)
        while next_out in pending and pending[next_out].done:
            video = pending.pop(next_out)
            next_out += 1
            bar.update(1)
            yield VideoResult(video.path, torch.cat(video.rows) if video.error is None else None, video.error,
                              labels)

    bar = tqdm(total=len(dataset), unit="video", file=sys.stderr, disable=None if progress is None else not progress,
               dynamic_ncols=True)
    with forward_streams(device) as streams, contextlib.ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(streams)) if streams > 1 else None
        try:
            for video in videos:
                entry = _Pending(video.path, 0 if video.clips is None else video.clips.shape[0], video.error)
                if video.clips is not None and device.type == "cuda":
                    # Uploaded as each video arrives (the GPU is idle then: forward passes end in a copy back),
                    # a few MB from the worker's shared memory; DataLoader's pinning thread cost 12% of the rate.
                    video.clips = video.clips.to(device)
                pending[video.index] = entry
                start = 0
                while start < entry.expected:  # a video's clips may straddle two batches
                    take = min(batch_size - sum(count for _, count in owners), entry.expected - start)
                    batch.append(video.clips[start:start + take])
                    owners.append((entry, take))
                    start += take
                    if sum(count for _, count in owners) == batch_size:
                        run_batch()
                yield from finished()
            if batch:
                run_batch()
            collect(wait_for=len(in_flight))
            yield from finished()
        finally:
            bar.close()


def classify_videos(
    paths: Sequence[str | os.PathLike],
    model: nn.Module,
    processor: VideoMAEImageProcessor,
    *,
    sampling_rate: int | None = None,
    num_clips: int = 4,
    batch_size: int | None = None,
    num_workers: int | None = None,
    dtype: str | torch.dtype = "auto",
    progress: bool | None = False,
    decoder: FrameDecoder | str | None = None,
    id2label: dict[int, str] | None = None,
    decoder_resize: bool = False,
    decoding: Decoding | None = None,
    frame_stride: int | None = None,
) -> Iterator[VideoResult]:
    """Class scores of every video: the softmax (sigmoid for multi-label models) of each clip,
    averaged. Runs where the model is; `sampling_rate` None: the one the checkpoint records,
    else 4. `id2label` renames the classes (default: the model's)."""
    config = model.config
    multi_label = config.problem_type == "multi_label_classification"

    def scores(pixels: torch.Tensor) -> torch.Tensor:
        logits = model(pixels).logits.float()
        return logits.sigmoid() if multi_label else logits.softmax(dim=-1)

    clip_len, rate = clip_settings(config, sampling_rate)
    return run_videos(paths, scores, processor, clip_len=clip_len, sampling_rate=rate, num_clips=num_clips,
                      batch_size=batch_size, num_workers=num_workers, device=_model_device(model), dtype=dtype,
                      progress=progress, decoder=decoder,
                      id2label=id2label or {int(k): v for k, v in config.id2label.items()},
                      decoder_resize=decoder_resize, decoding=decoding, frame_stride=frame_stride)


def video_features(model: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """(B, T, C, H, W) -> (B, hidden_size): a classifier's pooled fc_norm feature, or the mean
    of an encoder's last hidden states."""
    if hasattr(model, "forward_features"):
        pooled, _ = model.forward_features(pixels)
        return pooled
    return model(pixels).last_hidden_state.mean(dim=1)


def embed_videos(
    paths: Sequence[str | os.PathLike],
    model: nn.Module,
    processor: VideoMAEImageProcessor,
    *,
    sampling_rate: int | None = None,
    num_clips: int = 4,
    batch_size: int | None = None,
    num_workers: int | None = None,
    dtype: str | torch.dtype = "auto",
    progress: bool | None = False,
    decoder: FrameDecoder | str | None = None,
    features: str = "auto",
    decoder_resize: bool = False,
    decoding: Decoding | None = None,
    frame_stride: int | None = None,
) -> Iterator[VideoResult]:
    """One feature per video, the mean over its clips; `features`: a kind of
    `videomae.features` (auto: `video_features`). Runs where the model is; `sampling_rate`
    None: the one the checkpoint records, else 4."""
    from .features import feature_function

    config = model.config
    clip_len, rate = clip_settings(config, sampling_rate)
    return run_videos(paths, feature_function(model, features), processor, clip_len=clip_len, sampling_rate=rate,
                      num_clips=num_clips, batch_size=batch_size, num_workers=num_workers,
                      device=_model_device(model), dtype=dtype, progress=progress, decoder=decoder,
                      decoder_resize=decoder_resize, decoding=decoding, frame_stride=frame_stride)


def _model_device(model: nn.Module) -> torch.device:
    device = getattr(model, "device", None)  # an ExportedModel has no parameters
    return torch.device(device) if device is not None else next(model.parameters()).device


__all__ = [
    "classify_videos", "embed_videos", "run_videos", "start_decoding", "Decoding", "clip_settings",
    "default_batch_size", "VideoResult", "video_features",
    "VideoClips", "DecodedVideo", "FrameDecoder", "decoded_videos", "normalize", "forward_clips", "load_clips",
    "clip_indices",
    "expand_videos",
    "load_processor", "load_classifier", "load_feature_model", "load_pretraining_model", "model_architectures",
    "read_config",
    "quiet_loading", "checkpoint_sampling_rate", "read_label_names", "DEFAULT_SAMPLING_RATE", "SAMPLING_RATE_KEY",
    "resolve_device", "resolve_dtype", "autocast",
]
