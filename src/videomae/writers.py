"""Feature files: one row per video (.npy, .npz), with the videos' names beside the matrix; or one
row per clip (.parquet, `embed_to_parquet`).

Parquet: one row per clip, with path, clip number, start and end time, model id, feature kind, the
feature's shape and its values (flattened), and an error column; a file that cannot be read is one
row with its error and no feature. Row groups are bounded in bytes. Rows are flushed to part files
beside the output (OUT.parts/) as they are made, and merged into OUT at the end; a rerun with the
same OUT skips the files already in OUT or its parts (a killed run resumes from its last flush) and
tries the failed ones again.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .processing import VideoMAEImageProcessor

logger = logging.getLogger(__name__)

FEATURE_SUFFIXES = (".npy", ".npz", ".parquet")
DEFAULT_ROW_GROUP_BYTES = 64 << 20  # 64 MiB: about 26 clips of a base model's token grid


def check_feature_path(out: str | os.PathLike) -> Path:
    """`out` if its format can be written here; else an error saying which formats can. Call it
    before hours of embedding, not after."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in FEATURE_SUFFIXES:
        raise ValueError(f"--out {out}: unknown format {out.suffix or '(no extension)'}; use .npy, .npz or .parquet")
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ValueError(f"--out {out}: writing .parquet needs pyarrow (pip install pyarrow); "
                             f"or choose .npy or .npz") from None
    return out


def write_features(out: str | os.PathLike, names: list[str], matrix: np.ndarray) -> list[Path]:
    """.npy (+ .txt of names, one a line), .npz (arrays features and names) or .parquet
    (columns video, features). Returns the files written."""
    out = check_feature_path(out)
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
    import pyarrow as pa
    import pyarrow.parquet as pq

    column = pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), matrix.shape[1])
    pq.write_table(pa.table({"video": pa.array(names), "features": column}), out)
    return [out]


# --------------------------------------------------------------------------- per clip, Parquet
def clip_times(path: str | os.PathLike, clip_len: int, sampling_rate: int, num_clips: int,
               frame_stride: int | None = None) -> np.ndarray:
    """(num_clips, 2) start and end of each clip `run_videos` takes, in seconds: first frame / fps
    and (last frame + 1) / fps at the average frame rate (NaN where the file records none)."""
    from .pipeline import clip_indices, stored_rate
    from .video import probe_video

    info = probe_video(path)
    rate = stored_rate(path, sampling_rate, frame_stride)
    index = clip_indices(info.num_frames, clip_len, rate, num_clips)  # (num_clips, clip_len)
    fps = info.fps if info.fps > 0 else float("nan")
    return np.stack([index[:, 0] / fps, (index[:, -1] + 1) / fps], axis=1)


# --------------------------------------------------------------------------- Parquet
def clip_schema(kind: str):  # noqa: ANN201 - pyarrow.Schema
    """The per-clip row schema for features of `kind` (the token grid is float16)."""
    import pyarrow as pa

    return pa.schema([
        ("path", pa.string()), ("clip", pa.int32()), ("start_s", pa.float64()), ("end_s", pa.float64()),
        ("model", pa.string()), ("feature_kind", pa.string()), ("shape", pa.list_(pa.int32())),
        ("feature", pa.list_(pa.float16() if kind == "tokens" else pa.float32())), ("error", pa.string()),
    ])


def _parquet_files(out: Path) -> list[Path]:
    """OUT (a finished run) and its part files (a run in progress or killed), in write order."""
    parts = sorted(out.with_name(out.name + ".parts").glob("part-*.parquet"))
    return ([out] if out.is_file() else []) + parts


class ParquetClipWriter:
    """Per-clip rows to OUT, flushed in row groups of at most `row_group_bytes` (a single video
    larger than that is one row group of its own: a video's clips are never split, so a flushed
    file is either finished or absent). Use as a context manager; `close` merges the parts into OUT."""

    def __init__(self, out: str | os.PathLike, model_id: str, kind: str,
                 row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES) -> None:
        import pyarrow.parquet as pq

        self.out = Path(out)
        self.parts = self.out.with_name(self.out.name + ".parts")
        self.model_id = model_id
        self.kind = kind
        self.schema = clip_schema(kind)
        self.row_group_bytes = row_group_bytes
        self.done: set[str] = set()
        for file in _parquet_files(self.out):
            table = pq.read_table(file, columns=["path", "model", "feature_kind", "error"])
            previous = {(m, k) for m, k in zip(table["model"].to_pylist(), table["feature_kind"].to_pylist())
                        if m is not None}
            if previous - {(model_id, kind)}:
                (m, k), *_ = previous - {(model_id, kind)}
                raise ValueError(f"{file}: holds {k} features of {m}, not {kind} of {model_id}; choose another "
                                 f"--out, or delete it to start again")
            self.done.update(p for p, e in zip(table["path"].to_pylist(), table["error"].to_pylist()) if e is None)
        self._rows: list[dict] = []
        self._bytes = 0
        self._next_part = len(list(self.parts.glob("part-*.parquet")))

    def __enter__(self) -> ParquetClipWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, path: str, features: np.ndarray | None, times: np.ndarray | None, error: str | None = None) -> None:
        """One video: features (num_clips, ...) with times (num_clips, 2), or its error."""
        rows, size = clip_rows(path, features, times, error, self.model_id, self.kind)
        if self._rows and self._bytes + size > self.row_group_bytes:
            self.flush()
        self._rows.extend(rows)
        self._bytes += size

    def flush(self) -> None:
        """The buffered rows as one row group, in a new part file."""
        if not self._rows:
            return
        import pyarrow.parquet as pq

        table = rows_table(self._rows, self.schema)
        self.parts.mkdir(parents=True, exist_ok=True)
        part = self.parts / f"part-{self._next_part:05d}.parquet"
        tmp = part.with_suffix(".tmp")
        pq.write_table(table, tmp, row_group_size=len(self._rows))
        tmp.replace(part)  # a kill leaves a whole part or none
        self._next_part += 1
        self._rows.clear()
        self._bytes = 0

    def close(self) -> None:
        """Flush, then OUT = its earlier rows (less failed files, which were retried) + the parts,
        row group by row group."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        self.flush()
        sources = _parquet_files(self.out)
        if not sources or sources == [self.out]:
            return
        tmp = self.out.with_name(self.out.name + ".tmp")
        with pq.ParquetWriter(tmp, self.schema) as writer:
            for file in sources:
                reader = pq.ParquetFile(file)
                for i in range(reader.num_row_groups):
                    group = reader.read_row_group(i).cast(self.schema)
                    if file == self.out:  # failed files of an earlier run were tried again
                        group = group.filter(pc.is_null(group["error"]))
                    if group.num_rows:
                        writer.write_table(group, row_group_size=group.num_rows)
        tmp.replace(self.out)
        shutil.rmtree(self.parts)


def _list_array(values: list[np.ndarray | None], type):  # noqa: ANN001,ANN202 - pyarrow list type and array
    """A list column from numpy rows without going through Python floats (None: a null row)."""
    import pyarrow as pa

    lengths = np.array([0 if v is None else v.size for v in values], dtype=np.int32)
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    present = [v for v in values if v is not None]
    flat = np.concatenate(present) if present else np.zeros(0, np.float32)
    mask = pa.array([v is None for v in values])
    return pa.ListArray.from_arrays(offsets, pa.array(flat, type=type.value_type), type=type, mask=mask)


def clip_rows(path: str, features: np.ndarray | None, times: np.ndarray | None, error: str | None, model_id: str,
              kind: str) -> tuple[list[dict], int]:
    """One video's rows of the per-clip schema and about how many bytes they take: a row per clip
    (features (num_clips, ...) and times (num_clips, 2)), or one error row when `error` is set or
    there are no features. The one place that says what a row holds."""
    if error is not None or features is None:
        error = error or "no features"
        row = dict(path=path, clip=None, start_s=None, end_s=None, model=model_id, feature_kind=kind, shape=None,
                   feature=None, error=error)
        return [row], len(path) + len(error)
    values = features.astype(np.float16 if kind == "tokens" else np.float32)
    rows = [dict(path=path, clip=i, start_s=float(times[i, 0]), end_s=float(times[i, 1]), model=model_id,
                 feature_kind=kind, shape=list(values.shape[1:]), feature=values[i].reshape(-1), error=None)
            for i in range(values.shape[0])]
    return rows, values.nbytes + len(rows) * (len(path) + 64)


def rows_table(rows: list[dict], schema):  # noqa: ANN001,ANN201 - pyarrow.Schema and Table
    """`clip_rows`' rows as an Arrow table of `schema`."""
    import pyarrow as pa

    columns = {name: [row[name] for row in rows] for name in schema.names}
    return pa.table({name: pa.array(values, type=schema.field(name).type) if name != "feature"
                     else _list_array(values, schema.field(name).type)
                     for name, values in columns.items()}, schema=schema)


def write_clip_table(table, out: str | os.PathLike, row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES) -> None:  # noqa: ANN001
    """A per-clip table to `out`, whole or not at all (written to a hidden temporary name beside
    it, then renamed), in row groups of at most `row_group_bytes` that never split a video's clips
    (the rule `ParquetClipWriter` follows)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    out = Path(out)
    sizes = pc.fill_null(pc.list_value_length(table["feature"]), 0).to_numpy(zero_copy_only=False)
    sizes = sizes * table.schema.field("feature").type.value_type.bit_width // 8
    paths = table["path"].to_pylist()
    videos: list[tuple[int, int]] = []  # (first row, bytes) of each video
    for i, path in enumerate(paths):
        if i == 0 or path != paths[i - 1]:
            videos.append((i, 0))
        videos[-1] = (videos[-1][0], videos[-1][1] + int(sizes[i]))
    starts = [0]  # first row of each row group
    group_bytes = 0
    for first, size in videos:
        if first > starts[-1] and group_bytes + size > row_group_bytes:
            starts.append(first)
            group_bytes = 0
        group_bytes += size
    groups = list(zip(starts, starts[1:] + [table.num_rows]))
    tmp = out.with_name(f".{out.name}.tmp")
    with pq.ParquetWriter(tmp, table.schema) as writer:
        for first, end in groups:
            writer.write_table(table.slice(first, end - first), row_group_size=max(1, end - first))
    tmp.replace(out)  # a kill leaves the whole file or none


def embed_to_parquet(
    paths: Sequence[str | os.PathLike],
    model: nn.Module,
    processor: VideoMAEImageProcessor,
    out: str | os.PathLike,
    *,
    model_id: str,
    kind: str = "auto",
    sampling_rate: int | None = None,
    num_clips: int = 4,
    row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES,
    **run_options: object,
) -> Iterator[object]:
    """Features of every clip of every video not yet in `out`, written as they come; yields each
    video's `VideoResult` (after its rows are buffered). `run_options`: `run_videos`' batch_size,
    num_workers, dtype, progress, decoder, frame_stride."""
    from .features import feature_function, resolve_kind
    from .pipeline import DEFAULT_SAMPLING_RATE, checkpoint_sampling_rate, run_videos

    kind = resolve_kind(model, kind)
    config = model.config
    rate = sampling_rate or checkpoint_sampling_rate(config) or DEFAULT_SAMPLING_RATE
    with ParquetClipWriter(out, model_id, kind, row_group_bytes) as writer:
        todo = [Path(p) for p in paths if str(p) not in writer.done]
        if len(todo) < len(paths):
            logger.warning("%s: %d of %d files already done, skipped", out, len(paths) - len(todo), len(paths))
        results = run_videos(todo, feature_function(model, kind), processor, clip_len=config.num_frames,
                             sampling_rate=rate, num_clips=num_clips, device=_device(model), **run_options)
        for result in results:
            if result.ok:
                times = clip_times(result.path, config.num_frames, rate, num_clips, run_options.get("frame_stride"))
                writer.add(str(result.path), result.clip_outputs.numpy(), times)
            else:
                writer.add(str(result.path), None, None, result.error)
            yield result


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


__all__ = ["write_features", "check_feature_path", "FEATURE_SUFFIXES", "DEFAULT_ROW_GROUP_BYTES", "clip_times",
           "ParquetClipWriter", "embed_to_parquet", "clip_rows", "rows_table", "clip_schema", "write_clip_table"]
