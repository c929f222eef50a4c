"""`videomae embed --engine ray`: per-clip features of many videos on a Ray cluster, through Ray
Data (Ray schedules, retries and streams; nothing here schedules work).

    paths, sorted -> shards of `shard_size` (shard k = paths[k * size:(k + 1) * size], the same on every run)
      -> [Ray tasks, a CPU each: decode a video's clips, resize and crop; uint8]          `decode_row`
      -> [Ray actors via `map_batches`: the model, loaded once per actor; a GPU each
          when the cluster has GPUs, else threads beside the decoding tasks]             `ClipEmbedder`
      -> [this process: once all of a shard's rows have come, OUT/shard-K.parquet,
          written under a temporary name and renamed]

The rows are those of the single-process Parquet file (`videomae.writers`): decoding, the feature
kinds, the forward pass and the row layout are the same code. A rerun with the same OUT skips the
shards already written, so a killed run loses only the shards it had not finished, and no shard is
written twice. A file that cannot be read is one row with its error, never a failed run; its shard
is finished with it (delete the shard file to try that shard again). OUT/_manifest.json records
what the shards hold; a rerun that asks for another model, kind, clip count or input list is
refused rather than mixed in.

Ray is an optional dependency (`pip install 'videomae[ray]'`), imported only here and only when
this engine runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .writers import DEFAULT_ROW_GROUP_BYTES

logger = logging.getLogger(__name__)

MANIFEST = "_manifest.json"  # pyarrow's dataset reader skips names starting with _ or .
DEFAULT_SHARD_SIZE = 256  # videos per shard: about 3 MB of base-model vectors at 4 clips
TOKEN_SHARD_SIZE = 16  # a shard is held in this process until written: 16 videos of token grids are ~150 MB
ACTOR_OVERHEAD = 384 << 20  # an actor with torch and videomae imported: 240 MiB measured (Ray Data's report)
_NO_CLIPS = np.zeros((0, 1, 1, 1, 1), np.uint8)  # an error row's clips: same rank as real ones, no data


def _import_ray():  # noqa: ANN202 - the ray module
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ValueError("--engine ray needs Ray Data: pip install 'videomae[ray]'") from None
    return ray


# --------------------------------------------------------------------------- shards
def plan_shards(paths: Sequence[str | Path], shard_size: int) -> list[list[str]]:
    """The input paths sorted, duplicates dropped, cut into shards of `shard_size`: the same paths
    give the same shards on every run, which is what lets a rerun skip finished ones."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    ordered = sorted({str(p) for p in paths})
    return [ordered[i:i + shard_size] for i in range(0, len(ordered), shard_size)]


def shard_path(out: Path, index: int) -> Path:
    return out / f"shard-{index:05d}.parquet"


def _check_manifest(out: Path, manifest: dict) -> None:
    """Write OUT/_manifest.json on the first run; on a rerun, refuse a different one."""
    file = out / MANIFEST
    if file.is_file():
        previous = json.loads(file.read_text())
        changed = sorted(k for k in manifest if previous.get(k) != manifest[k])
        if changed:
            said = ", ".join(f"{k} {previous.get(k)!r} (now {manifest[k]!r})" for k in changed)
            raise ValueError(f"{out}: holds shards of another run: {said}; choose another --out, or delete it to "
                             f"start again")
        return
    if any(out.glob("shard-*.parquet")):
        raise ValueError(f"{out}: has shards but no {MANIFEST}; choose another --out")
    tmp = out / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    tmp.replace(file)


@dataclass
class ShardResult:
    """A shard just written: its file, how many videos and clip rows it holds, and its files' errors."""

    index: int
    path: Path
    videos: int
    clips: int
    errors: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- Ray Data stages
def decode_row(row: dict, *, processor, clip_len: int, sampling_rate: int, num_clips: int) -> dict:  # noqa: ANN001
    """A Ray Data `map` function (a CPU task): a video's clips (num_clips, T, C, H, W) uint8 and
    their times (num_clips, 2), as the single-process pipeline decodes them; or its error."""
    from .devices import one_thread_worker
    from .pipeline import _READ_ERRORS, VideoClips
    from .writers import clip_times

    one_thread_worker()  # a task per CPU; torch's default of a thread per CPU would contend
    path = Path(row["path"])
    video = VideoClips([path], processor, clip_len, sampling_rate, num_clips)[0]
    error = video.error
    if error is None:
        try:
            times = clip_times(path, clip_len, sampling_rate, num_clips)
        except _READ_ERRORS as err:
            error = f"{path}: {err}"
    if error is not None:
        return dict(row, clips=_NO_CLIPS, times=np.zeros((0, 2)), error=error)
    return dict(row, clips=video.clips.numpy(), times=times, error="")


class ClipEmbedder:
    """A Ray Data `map_batches` callable, run in actors: the model is loaded once, in the
    constructor; each call turns a batch of decoded videos into per-clip rows (an Arrow table with
    the shard and position of each video beside the row columns)."""

    def __init__(self, model_id: str, offline: bool, kind: str, processor, device: str, dtype: str,  # noqa: ANN001
                 batch_size: int, compile_blocks: bool, threads: int) -> None:
        from .devices import resolve_device, resolve_dtype
        from .features import feature_function
        from .pipeline import load_feature_model

        self.device = resolve_device(device)
        if self.device.type == "cpu":
            torch.set_num_threads(threads)
        model, _ = load_feature_model(model_id, offline)
        model.eval().to(self.device)
        if compile_blocks:
            model.compile_blocks()
        self.forward = feature_function(model, kind)
        self.model_id, self.kind = model_id, kind
        self.processor = processor
        self.dtype = resolve_dtype(dtype, self.device)
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]):  # noqa: ANN204 - pyarrow.Table
        import pyarrow as pa

        from .pipeline import forward_clips
        from .writers import clip_rows, clip_schema, rows_table

        errors = [str(e) for e in batch["error"]]
        ok = [i for i, e in enumerate(errors) if not e]
        features: dict[int, np.ndarray] = {}
        if ok:
            clips = torch.from_numpy(np.stack([np.asarray(batch["clips"][i]) for i in ok]))  # (V, n, T, C, H, W)
            out = forward_clips(clips.flatten(0, 1), self.forward, self.processor, self.device, self.dtype,
                                self.batch_size)  # (V * n, ...)
            out = out.reshape(len(ok), clips.shape[1], *out.shape[1:]).numpy()  # (V, n, ...)
            features = dict(zip(ok, out))
        rows, shards, positions = [], [], []
        for i, path in enumerate(batch["path"]):
            video_rows, _ = clip_rows(str(path), features.get(i), np.asarray(batch["times"][i]), errors[i] or None,
                                      self.model_id, self.kind)
            rows.extend(video_rows)
            shards.extend([int(batch["shard"][i])] * len(video_rows))
            positions.extend([int(batch["index"][i])] * len(video_rows))
        table = rows_table(rows, clip_schema(self.kind))
        return table.append_column("shard", pa.array(shards, pa.int32())).append_column(
            "index", pa.array(positions, pa.int32()))


# --------------------------------------------------------------------------- the engine
def embed_with_ray(
    paths: Sequence[str | Path],
    model_id: str,
    out: str | Path,
    *,
    kind: str = "auto",
    offline: bool = False,
    sampling_rate: int | None = None,
    num_clips: int = 4,
    batch_size: int = 8,
    shard_size: int | None = None,
    device: str = "auto",
    dtype: str = "auto",
    actors: int | None = None,
    compile_blocks: bool = False,
    address: str | None = None,
    progress: bool | None = None,
    row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES,
) -> Iterator[ShardResult]:
    """Per-clip features of `paths` into OUT/shard-K.parquet, one `ShardResult` per shard as it is
    written. Ray: the instance this process already joined; else `ray.init(address)`: a concrete
    HEAD:6379, or "auto" (RAY_ADDRESS, else the cluster `ray start` runs on this machine); None
    does the same, but starts a local instance for this run where there is no cluster.

    device: auto = a GPU per actor when the cluster has GPUs, else CPU actors of CPUs / actors threads.
    actors: how many model actors (default: the cluster's GPUs, or a quarter of its CPUs); a GPU
    actor takes a CPU, a CPU actor none, and the free CPUs decode. shard_size: videos per shard
    (default 256; 16 for the token grid).
    """
    from .features import resolve_kind
    from .pipeline import DEFAULT_SAMPLING_RATE, checkpoint_sampling_rate, load_feature_model, load_processor

    ray = _import_ray()
    if batch_size < 1 or num_clips < 1:
        raise ValueError(f"batch_size and num_clips must be >= 1, got {batch_size}, {num_clips}")
    model, _ = load_feature_model(model_id, offline)  # here too: a bad id or kind fails before Ray starts
    kind = resolve_kind(model, kind)
    config = model.config
    processor = load_processor(model_id, config, offline)
    rate = sampling_rate or checkpoint_sampling_rate(config) or DEFAULT_SAMPLING_RATE
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    del model
    shards = plan_shards(paths, shard_size or (TOKEN_SHARD_SIZE if kind == "tokens" else DEFAULT_SHARD_SIZE))
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: --engine ray writes a folder of Parquet shards, and this is a file")
    out.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256("\n".join(p for shard in shards for p in shard).encode()).hexdigest()
    _check_manifest(out, dict(model=model_id, feature_kind=kind, num_clips=num_clips, sampling_rate=rate,
                              clip_len=config.num_frames, shard_size=len(shards[0]) if shards else 0,
                              videos=sum(map(len, shards)), paths_sha256=digest))
    for stale in out.glob(".shard-*.tmp"):  # a shard a killed run was writing
        stale.unlink()
    todo = [k for k in range(len(shards)) if not shard_path(out, k).is_file()]
    if len(todo) < len(shards):
        logger.warning("%s: %d of %d shards already written, skipped", out, len(shards) - len(todo), len(shards))
    if not todo:
        return

    started = not ray.is_initialized()
    if started:
        ray.init(address=address, logging_level=logging.WARNING)
    try:
        yield from _run(ray, shards, todo, out, model_id=model_id, kind=kind, offline=offline, processor=processor,
                        clip_len=config.num_frames, rate=rate, num_clips=num_clips, batch_size=batch_size,
                        device=device, dtype=dtype, actors=actors, compile_blocks=compile_blocks, progress=progress,
                        actor_memory=2 * weights + ACTOR_OVERHEAD, row_group_bytes=row_group_bytes)
    finally:
        if started:
            ray.shutdown()


def _run(ray, shards: list[list[str]], todo: list[int], out: Path, *, model_id: str, kind: str, offline: bool,  # noqa: ANN001
         processor, clip_len: int, rate: int, num_clips: int, batch_size: int, device: str, dtype: str,  # noqa: ANN001
         actors: int | None, compile_blocks: bool, progress: bool | None, actor_memory: int,
         row_group_bytes: int) -> Iterator[ShardResult]:
    """The Ray Data pipeline over the shards in `todo`; each shard written once all its rows came."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from .writers import write_clip_table

    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
    if device == "auto":
        device = "cuda" if gpus else "cpu"
    if device.startswith("cuda") and not gpus:
        raise ValueError(f"--device {device}: the Ray cluster has no GPUs ({cpus} CPUs); use auto or cpu")
    on_gpu = device.startswith("cuda")
    actors = actors or (gpus if on_gpu else max(1, cpus // 4))
    if on_gpu and actors >= cpus:
        raise ValueError(f"--actors {actors}: the Ray cluster has {cpus} CPUs, and decoding needs at least one "
                         f"that the GPU actors leave (each takes one)")
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = sys.stderr.isatty() if progress is None else progress

    items = [dict(shard=k, index=i, path=p) for k in todo for i, p in enumerate(shards[k])]
    dataset = ray.data.from_items(items).map(
        decode_row, num_cpus=1,
        fn_kwargs=dict(processor=processor, clip_len=clip_len, sampling_rate=rate, num_clips=num_clips))
    # A GPU actor takes a CPU to feed its GPU. A CPU actor takes none: it runs the model on its
    # share of the CPUs (threads) beside the decoding tasks, which take every CPU, as the single
    # process runs its model beside its decoding workers. Given a CPU of its own, it left it idle
    # while waiting for decoding, and Ray Data then ran one decoding task at a time on 2 CPUs: 7.3
    # against 9.2 videos/s with a model as cheap as decoding (benchmarks/RESULTS.md).
    # memory: the process, and the checkpoint and the model while loading; Ray places no more
    # actors on a node than its memory takes. The requests also keep the two stages apart: Ray Data
    # fuses a task stage into the actor stage after it when their resource requests are the same,
    # and decoding would then run inside the actors, in turn with the model (tests/test_ray_engine.py
    # checks that it does not).
    dataset = dataset.map_batches(
        ClipEmbedder, batch_size=max(1, batch_size // num_clips), batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=1 if on_gpu else 0, memory=actor_memory,
        **(dict(num_gpus=1) if on_gpu else {}),
        fn_constructor_kwargs=dict(model_id=model_id, offline=offline, kind=kind, processor=processor,
                                   device="cuda" if on_gpu else "cpu", dtype=dtype, batch_size=batch_size,
                                   compile_blocks=compile_blocks, threads=max(1, cpus // actors)))

    pieces: dict[int, list] = {k: [] for k in todo}
    seen = dict.fromkeys(todo, 0)  # videos of each shard received
    for table in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
        firsts = pc.or_kleene(pc.is_null(table["clip"]), pc.equal(table["clip"], 0))  # a video's first row
        for k in pc.unique(table["shard"]).to_pylist():
            mine = pc.equal(table["shard"], k)
            pieces[k].append(table.filter(mine))
            seen[k] += pc.sum(pc.and_(mine, firsts)).as_py() or 0
            if seen[k] < len(shards[k]):
                continue
            rows = pa.concat_tables(pieces.pop(k)).sort_by([("index", "ascending"), ("clip", "ascending")])
            rows = rows.drop_columns(["shard", "index"])
            path = shard_path(out, k)
            write_clip_table(rows, path, row_group_bytes)
            errors = [e for e in rows["error"].to_pylist() if e is not None]
            yield ShardResult(k, path, len(shards[k]), rows.num_rows - len(errors), errors)
    if logger.isEnabledFor(logging.DEBUG):  # --debug: each stage's tasks, times and rows, to see where time went
        logger.debug("Ray Data stages:\n%s", dataset.stats())
    if pieces:  # Ray Data lost no rows so far; say so loudly if it ever does
        raise RuntimeError(f"{out}: shards {sorted(pieces)} did not receive all their videos; rerun to finish them")


__all__ = ["embed_with_ray", "plan_shards", "shard_path", "ShardResult", "decode_row", "ClipEmbedder",
           "DEFAULT_SHARD_SIZE", "TOKEN_SHARD_SIZE", "MANIFEST"]
