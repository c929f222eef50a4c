"""Video datasets for training and evaluation: where the videos are, and how clips are cut.

Sources:
  * a folder of videos, searched recursively (unlabeled, for pretraining);
  * a folder of class folders (`root/<class>/**/<video>`), classes in sorted order;
  * a list file: the original repository's `path label` lines (space separated; a line with a
    path alone, or label -1, is unlabeled), or a CSV with a header (`path,label`). Relative
    paths are relative to `root` (default: the list file's folder). Labels are integers, or
    class names mapped through the given names (or, failing that, their sorted order);
  * for inference, also a Parquet file with a column of paths (`read_video_paths`).

Items are keyed by (index, epoch) (see `sampler.py`); every random choice of an item comes
from a generator seeded by (seed, epoch, index), so the same item is the same clip on any
worker, any rank and after any resume. A video that cannot be decoded gives a
`DecodeFailure` instead of raising; the collate step drops and reports it.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from torch.utils.data import Dataset

from .. import transforms as T
from .augment import RandAugmentSpec, parse_rand_augment, rand_augment, random_erasing
from ..sampling import check_sampling, evaluation_indices, training_indices
from ..video import VideoDecodeError, read_video
from .sampler import AUGMENT, sample_seed

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp",
                    ".ogv", ".ts", ".gif")
_PATH_COLUMNS = ("path", "video", "video_path", "file", "filename", "filepath", "youtube_id")
_LABEL_COLUMNS = ("label", "labels", "class", "class_id", "target", "category")
# Errors that mean "this file cannot be decoded", as opposed to bugs in the pipeline.
_DECODE_ERRORS = (VideoDecodeError, av.error.FFmpegError, OSError, EOFError, RuntimeError, MemoryError)


@dataclass(frozen=True)
class VideoRecord:
    path: str
    label: int = -1  # -1: no label


@dataclass(frozen=True)
class DecodeFailure:
    """Returned by a dataset in place of an item whose video cannot be decoded."""

    path: str
    reason: str


# --------------------------------------------------------------------------- finding videos
def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS and not path.name.startswith(".")


def find_videos(folder: str | os.PathLike) -> list[Path]:
    """Every video file under `folder`, recursively, in sorted order."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_video(p))


def read_class_names(path: str | os.PathLike) -> list[str]:
    """Class names, one a line (line i = label i)."""
    names = [line.strip() for line in Path(path).read_text().splitlines()]
    return [n for n in names if n]


def class_folder_records(
    folder: str | os.PathLike, class_names: Sequence[str] | None = None
) -> tuple[list[VideoRecord], list[str]]:
    """`folder/<class>/**/<video>`: records labelled by class folder name, in sorted order or,
    when `class_names` are given, by their position there."""
    folder = Path(folder)
    found = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    names = list(class_names) if class_names is not None else found
    unknown = [name for name in found if name not in names]
    if unknown:
        raise ValueError(f"{folder}: class folder(s) {unknown} are not among the class names {names}")
    lookup = {name: i for i, name in enumerate(names)}
    records = [VideoRecord(str(p), lookup[name]) for name in found for p in find_videos(folder / name)]
    if not records:
        raise ValueError(f"{folder}: no videos in class folders (expected {folder}/<class name>/<video file>)")
    return records, names


def _parse_label(text: str, where: str) -> int | str:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        if not text:
            raise ValueError(f"{where}: empty label") from None
        return text


def read_video_list(
    list_file: str | os.PathLike, root: str | os.PathLike | None = None, class_names: Sequence[str] | None = None
) -> tuple[list[VideoRecord], list[str] | None]:
    """Parse a `path label` list or a CSV; returns the records and the class names (those given,
    or the sorted names found when labels are names; None for integer labels)."""
    list_file = Path(list_file)
    text = list_file.read_text()
    base = Path(root) if root is not None else list_file.parent
    rows: list[tuple[str, int | str | None, str]] = []  # (path, label, where)
    lines = [(i + 1, line) for i, line in enumerate(text.splitlines()) if line.strip() and
             not line.lstrip().startswith("#")]
    if not lines:
        raise ValueError(f"{list_file}: the list is empty")
    first = lines[0][1]
    if list_file.suffix.lower() == ".csv" or ("," in first and " " not in first.split(",")[0].strip()):
        rows = _read_csv(text, list_file)
    else:
        for number, line in lines:
            where = f"{list_file}:{number}"
            parts = line.strip().rsplit(maxsplit=1)
            if len(parts) == 2 and _looks_like_label(parts[1]):
                rows.append((parts[0], _parse_label(parts[1], where), where))
            else:
                rows.append((line.strip(), None, where))
    names = list(class_names) if class_names is not None else None
    string_labels = sorted({lab for _, lab, _ in rows if isinstance(lab, str)})
    if string_labels and names is None:
        names = string_labels
    lookup = {name: i for i, name in enumerate(names or [])}
    records = []
    for path, label, where in rows:
        if isinstance(label, str):
            if label not in lookup:
                raise ValueError(f"{where}: label {label!r} is not a known class name")
            label = lookup[label]
        full = Path(path) if Path(path).is_absolute() else base / path
        records.append(VideoRecord(str(full), -1 if label is None else int(label)))
    return records, names


LIST_SUFFIXES = (".txt", ".csv", ".lst", ".list", ".parquet")  # files that name videos rather than hold one


def read_video_paths(list_file: str | os.PathLike) -> list[str]:
    """The videos a list names: `read_video_list`'s lines (labels ignored), or a Parquet file's
    path column (the first of path, video, ... that it has; e.g. an `embed` output or a table of a
    data set). Relative paths are relative to the file's folder."""
    list_file = Path(list_file)
    if list_file.suffix.lower() != ".parquet":
        return [record.path for record in read_video_list(list_file)[0]]
    import pyarrow.parquet as pq

    names = pq.read_schema(list_file).names
    column = next((name for name in names if name.lower() in _PATH_COLUMNS), None)
    if column is None:
        raise ValueError(f"{list_file}: no column of paths (expected one of {', '.join(_PATH_COLUMNS)}; it has "
                         f"{', '.join(names)})")
    paths = [p for p in pq.read_table(list_file, columns=[column])[column].to_pylist() if p]
    return [p if Path(p).is_absolute() else str(list_file.parent / p) for p in paths]


def _looks_like_label(token: str) -> bool:
    """The last token of a `path label` line is a label unless it looks like part of a path."""
    return not is_video(Path(token)) and "/" not in token and "\\" not in token


def _is_int(text: str) -> bool:
    try:
        int(text.strip())
    except ValueError:
        return False
    return True


def _read_csv(text: str, list_file: Path) -> list[tuple[str, int | str | None, str]]:
    reader = list(csv.reader(io.StringIO(text)))
    reader = [row for row in reader if row and any(cell.strip() for cell in row)]
    header = [cell.strip().lower() for cell in reader[0]]
    path_col, label_col, start = 0, 1 if len(header) > 1 else None, 0
    named = any(h in _PATH_COLUMNS or h in _LABEL_COLUMNS for h in header)
    # An unnamed header: its label cell is not a number while the next row's is.
    unnamed = len(reader) > 1 and len(header) > 1 and len(reader[1]) > 1 and \
        not _is_int(header[1]) and _is_int(reader[1][1])
    if named or unnamed:
        start = 1
        path_col = next((header.index(h) for h in _PATH_COLUMNS if h in header), 0)
        other = next((i for i in range(len(header)) if i != path_col), None)
        label_col = next((header.index(h) for h in _LABEL_COLUMNS if h in header), other)
    rows: list[tuple[str, int | str | None, str]] = []
    for number, row in enumerate(reader[start:], start=start + 1):
        where = f"{list_file}:{number}"
        if path_col >= len(row):
            raise ValueError(f"{where}: no path column in {row}")
        label = _parse_label(row[label_col], where) if label_col is not None and label_col < len(row) else None
        rows.append((row[path_col].strip(), label, where))
    return rows


def load_records(
    data: str | os.PathLike, root: str | os.PathLike | None = None, labeled: bool = True,
    class_names: Sequence[str] | None = None,
) -> tuple[list[VideoRecord], list[str] | None]:
    """Records of a list file or a folder (class folders when `labeled`, else every video)."""
    if not data:
        raise ValueError("no data given: pass a folder of videos or a list file of `path label` lines")
    path = Path(data)
    if path.is_file():
        records, names = read_video_list(path, root, class_names)
    elif path.is_dir():
        if labeled:
            records, names = class_folder_records(path, class_names)
        else:
            records, names = [VideoRecord(str(p)) for p in find_videos(path)], None
    else:
        raise FileNotFoundError(f"data {str(path)!r}: no such file or folder")
    if not records:
        raise ValueError(f"{path}: no videos found (extensions: {', '.join(VIDEO_EXTENSIONS)})")
    if labeled:
        unlabeled = [r.path for r in records if r.label < 0]
        if unlabeled:
            raise ValueError(f"{path}: {len(unlabeled)} video(s) have no label, e.g. {unlabeled[0]}")
    return records, names


# --------------------------------------------------------------------------- datasets
def stored_sampling_rate(sampling_rate: int, frame_stride: int) -> int:
    """The stride in stored frames of a clip at `sampling_rate` source frames, for videos that keep
    every `frame_stride`-th frame (`videomae prep --frame-stride`)."""
    if frame_stride < 1 or sampling_rate % frame_stride:
        raise ValueError(f"sampling_rate {sampling_rate} is not a multiple of the videos' frame_stride "
                         f"{frame_stride} (they keep every {frame_stride}-th frame): use a sampling rate that is")
    return sampling_rate // frame_stride


def _stored_rate(sampling: str, sampling_rate: int, frame_stride: int) -> int:
    """`stored_sampling_rate` for dense clips; segments span the whole video whatever the stride,
    so they need no rate that the stride divides."""
    return stored_sampling_rate(sampling_rate, frame_stride) if sampling == "dense" else sampling_rate


def _key(key: int | tuple[int, int]) -> tuple[int, int]:
    return (int(key), 0) if isinstance(key, (int, np.integer)) else (int(key[0]), int(key[1]))


Decoder = Callable[..., torch.Tensor]
"""`decoder(path, indices_or_pick, short_side)` -> uint8 (N, H, W, 3): `read_video` (PyAV, on
the CPU) or `videomae.data.nvdec.NvdecDecoder` (NVDEC, CUDA tensors)."""


def _decode(path: str, pick: Callable[[int], np.ndarray], short_side: int | None,
            decoder: Decoder | None = None) -> torch.Tensor | DecodeFailure:
    """Frames (len(indices), H, W, 3) uint8, resized by the decoder, or the reason they cannot
    be had. `pick` chooses the indices from the frame count (one opening of the file)."""
    try:
        if decoder is not None:
            return decoder(path, pick, short_side)
        return read_video(path, pick, resize=short_side)
    except _DECODE_ERRORS as err:
        return DecodeFailure(path, f"{type(err).__name__}: {err}")


class VideoClipDataset(Dataset):
    """Training clips: `num_sample` random clips of `num_frames` frames, `sampling_rate`
    apart, from one decoding of each video; multi-scale or random-resized crop and flip.
    `sampling_rate` counts source frames; videos written by `videomae prep --frame-stride S`
    keep every S-th one, so pass `frame_stride=S` (see `videomae.prep.stored_frame_stride`).
    `sampling="segments"` takes one random frame from each of `num_frames` equal segments of
    the whole video instead (Something-Something; `sampling_rate` unused; see `videomae.sampling`).
    Fine-tuning adds, after the crop and flip, RandAugment (`rand_augment`, a timm string such as
    `rand-m7-n4-mstd0.5-inc1`) and random erasing (`random_erasing`, its probability); both are
    off by default (pretraining uses neither) and draw once per clip (`videomae.data.augment`).

    An item is a dict: `pixel_values` uint8 (num_sample, T, C, size, size), `label`, `index`,
    `epoch`; or a `DecodeFailure`.
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        num_frames: int,
        sampling_rate: int,
        image_size: int,
        short_side: int | None = None,
        crop: str = "multiscale",
        flip: bool = True,
        num_sample: int = 1,
        seed: int = 0,
        frame_stride: int = 1,
        decoder: Decoder | None = None,
        rand_augment: str | None = None,
        random_erasing: float = 0.0,
        sampling: str = "dense",
    ) -> None:
        check_sampling(sampling)
        if crop not in ("multiscale", "random_resized"):
            raise ValueError(f"crop must be 'multiscale' or 'random_resized', got {crop!r}")
        if not 0.0 <= random_erasing <= 1.0:
            raise ValueError(f"random_erasing is a probability in [0, 1], got {random_erasing}")
        self.rand_augment: RandAugmentSpec | None = parse_rand_augment(rand_augment) if rand_augment else None
        self.random_erasing = random_erasing
        self.records = list(records)
        self.num_frames = num_frames
        self.sampling_rate = sampling_rate
        self.image_size = image_size
        self.short_side = short_side
        self.crop = crop
        self.flip = flip
        self.num_sample = num_sample
        self.seed = seed
        self.decoder = decoder
        self.frame_stride = frame_stride
        self.sampling = sampling
        self.stored_rate = _stored_rate(sampling, sampling_rate, frame_stride)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any] | DecodeFailure:
        index, epoch = _key(key)
        record = self.records[index]
        generator = torch.Generator().manual_seed(sample_seed(self.seed, epoch, index, AUGMENT))

        def pick(num: int) -> np.ndarray:
            return np.concatenate([training_indices(self.sampling, self.num_frames, self.stored_rate, num, generator)
                                   for _ in range(self.num_sample)])

        frames = _decode(record.path, pick, self.short_side, self.decoder)
        if isinstance(frames, DecodeFailure):
            return frames
        clips = frames.reshape(self.num_sample, self.num_frames, *frames.shape[1:]).permute(0, 1, 4, 2, 3)
        out = torch.stack([self.augment(clip, generator) for clip in clips])  # (S, T, C, size, size)
        return {"pixel_values": out, "label": record.label, "index": index, "epoch": epoch}

    def augment(self, clip: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(T, C, H, W) uint8 -> (T, C, size, size) uint8: one crop for every frame, maybe flipped,
        then RandAugment and random erasing when asked (the same on every frame)."""
        # Augmentation needs no parity with PIL: torch's uint8 kernel at every scale (3x faster).
        if self.crop == "multiscale":
            clip = T.multi_scale_crop(clip, self.image_size, generator=generator, exact=False)
        else:
            clip = T.random_resized_crop(clip, self.image_size, generator=generator, exact=False)
        if self.flip and bool(torch.rand((), generator=generator) < 0.5):
            clip = T.horizontal_flip(clip)
        if self.rand_augment is not None:
            clip = rand_augment(clip, self.rand_augment, generator)
        if self.random_erasing > 0:
            clip = random_erasing(clip, self.random_erasing, generator)
        return clip.contiguous()


class MultiViewDataset(Dataset):
    """Evaluation views: `num_clips` clips evenly spaced in time x `num_crops` crops along the
    long side of frames resized (by the decoder) to a short side of `image_size`.
    `frame_stride` as in `VideoClipDataset`. With `sampling="segments"` the clips are segment
    samples at `num_clips` offsets into the segments (2: starts and midpoints, the original SSv2
    test protocol); nothing is flipped in either case.

    An item is a dict: `pixel_values` uint8 (num_clips * num_crops, T, C, size, size), `label`,
    `index`; or a `DecodeFailure`.
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        num_frames: int,
        sampling_rate: int,
        image_size: int,
        num_clips: int = 5,
        num_crops: int = 3,
        short_side: int | None = None,
        frame_stride: int = 1,
        decoder: Decoder | None = None,
        sampling: str = "dense",
    ) -> None:
        check_sampling(sampling)
        self.records = list(records)
        self.decoder = decoder
        self.sampling = sampling
        self.num_frames = num_frames
        self.sampling_rate = sampling_rate
        self.image_size = image_size
        self.num_clips = num_clips
        self.num_crops = num_crops
        self.short_side = short_side or image_size
        self.frame_stride = frame_stride
        self.stored_rate = _stored_rate(sampling, sampling_rate, frame_stride)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def num_views(self) -> int:
        return self.num_clips * self.num_crops

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any] | DecodeFailure:
        index, _ = _key(key)
        record = self.records[index]

        def pick(num: int) -> np.ndarray:
            return evaluation_indices(self.sampling, self.num_frames, self.stored_rate, num, self.num_clips).reshape(-1)

        frames = _decode(record.path, pick, self.short_side, self.decoder)
        if isinstance(frames, DecodeFailure):
            return frames
        clips = frames.reshape(self.num_clips, self.num_frames, *frames.shape[1:]).permute(0, 1, 4, 2, 3)
        if self.short_side != self.image_size:
            clips = T.resize_shortest_edge(clips, self.image_size)
        views = [T.uniform_crop(clip, self.image_size, k, self.num_crops).contiguous()
                 for clip in clips for k in range(self.num_crops)]
        return {"pixel_values": torch.stack(views), "label": record.label, "index": index}


__all__ = ["VideoRecord", "DecodeFailure", "VideoClipDataset", "MultiViewDataset", "find_videos", "read_video_list",
           "class_folder_records", "load_records", "read_class_names", "read_video_paths", "VIDEO_EXTENSIONS",
           "LIST_SUFFIXES"]
