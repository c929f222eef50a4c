"""Rewrite a video data set once into a form that decodes cheaply for training.

Why: a training clip (16 frames at stride 4) needs a 64-frame window, and H.264 as cameras and
web sites store it (keyframes up to 250 frames apart) must decode from the keyframe before the
window: 60-190 frames per clip, at full resolution. `prepare` re-encodes every video with a short
keyframe interval, at training resolution, constant frame rate, no audio, optionally keeping only
every `frame_stride`-th frame, so a clip costs a few dozen small frames (benchmarks/RESULTS.md,
"Preparing a data set", measures the formats and why the defaults are what they are).

Frame indices survive the rewrite: stored frame k is source frame k * frame_stride (frames in
presentation order, as `read_video` counts them), stamped k / (fps / frame_stride). A clip at
sampling stride r on the source is a clip at stride r / frame_stride on the stored files; the
datasets take `frame_stride` and do that division, `stored_frame_stride(data)` reads it back
from the `prep.json` written next to the data.

Resumable: each output is written under a temporary name and renamed when complete, and a line
is appended to `prep-files.jsonl` (source, size, mtime); a rerun skips outputs whose source is
unchanged and redoes the rest. A killed run leaves no partial file under a final name.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .data.datasets import find_videos, read_video_list
from .video import _open, _rotation

__all__ = ["PrepOptions", "PrepSummary", "FileResult", "prepare", "transcode", "stored_frame_stride",
           "video_frame_stride", "output_size", "PREP_FILE", "MANIFEST_FILE"]

log = logging.getLogger(__name__)

PREP_FILE = "prep.json"
MANIFEST_FILE = "prep-files.jsonl"
_TMP_SUFFIX = ".prep-tmp"
_ENCODERS = {"h264": "libx264"}  # the encoder PyAV's wheels ship


@dataclass(frozen=True)
class PrepOptions:
    """How the stored files are encoded. Defaults measured by benchmarks/prep_formats.py
    (benchmarks/RESULTS.md, "Preparing a data set"), on one core:

    short_side 320: the recipe's resize before cropping 224; never upscaled.
    frame_stride 1: every frame kept, so any sampling rate still works (2 takes 0.75-0.85x the
        disk and decodes 1.15-1.35x faster, for recipes whose sampling rates are all even).
    keyint 16, bframes 0: the fastest clip decode among intervals 4-32 that stays within 2x the
        source's disk (3-5x faster than the sources; 0.51x the disk of 720p ones, 1.14x of 360p;
        all-intra is faster but takes 2.7x the disk of 360p sources). B-frames save 10-15% of the
        disk but delay the first frame after every seek (up to a third of the decode speed).
    crf 23: x264's default quality. preset fast: between veryfast (prepares 2x faster, 1 dB
        worse for good) and medium (the same size, speed and quality within the noise).
    max_size_ratio 2.0: a file whose copy would take more than this times its source's bytes
        (noisy, already small sources: 2.09x measured at CRF 23) is encoded again at a CRF 4
        higher, up to 39, so a prepared set never takes much more than twice its source.
    """

    short_side: int = 320
    frame_stride: int = 1
    keyint: int = 16
    crf: int = 23
    preset: str = "fast"
    bframes: int = 0
    codec: str = "h264"
    max_size_ratio: float = 2.0

    def __post_init__(self) -> None:
        for name in ("short_side", "frame_stride", "keyint"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.short_side % 2:
            raise ValueError(f"short_side must be even (yuv420p halves the chroma planes), got {self.short_side}")
        if not 0 <= self.bframes <= 16:
            raise ValueError(f"bframes must be in 0..16, got {self.bframes}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf must be in 0..51 (x264's quality scale, lower is better), got {self.crf}")
        if not self.max_size_ratio > 0:
            raise ValueError(f"max_size_ratio must be positive, got {self.max_size_ratio}")
        if self.codec not in _ENCODERS:
            raise ValueError(f"codec {self.codec!r} is not supported; choose one of {sorted(_ENCODERS)}")


@dataclass(frozen=True)
class FileResult:
    """One file's outcome: `error` is None when it was written (or skipped as already done)."""

    source: str
    output: str  # relative to DST
    label: int | str | None
    skipped: bool = False
    error: str | None = None
    frames_in: int = 0
    frames_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


@dataclass
class PrepSummary:
    """What a run did. `bytes_in` / `bytes_out` cover every file the list holds (done and skipped)."""

    dst: str
    list_file: str
    done: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (source path, reason)
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def ratio(self) -> float:
        """Stored size over source size (0 when nothing was stored)."""
        return self.bytes_out / self.bytes_in if self.bytes_in else 0.0


# ---------------------------------------------------------------- one file


def output_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the shorter side `short_side` (never upscaled), aspect kept, both even."""
    short, long = min(width, height), max(width, height)
    new_short = min(short_side, short)
    new_long = round(new_short * long / short)
    new_short, new_long = max(2, new_short // 2 * 2), max(2, new_long // 2 * 2)
    return (new_short, new_long) if width <= height else (new_long, new_short)


def _frames_in_order(container: av.container.InputContainer, stream: av.video.stream.VideoStream
                     ) -> Iterator[av.VideoFrame]:
    """Decoded frames with strictly increasing timestamps: the frames `read_video` indexes."""
    last = None
    for frame in container.decode(stream):
        time = frame.pts if frame.pts is not None else frame.dts
        if time is not None and last is not None and time <= last:
            continue  # a repeated timestamp: read_video counts it once
        last = time if time is not None else last
        yield frame


def _frame_rate(stream: av.video.stream.VideoStream) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or rate <= 0:
        raise ValueError("no frame rate in the stream")
    return Fraction(rate).limit_denominator(1_000_000)


def transcode(source: str | os.PathLike, target: str | os.PathLike, options: PrepOptions, threads: int = 0
              ) -> tuple[int, int]:
    """Re-encode `source` into the MP4 file `target` as `options` say; returns (frames read, frames written).

    `target` is written in place: callers that need atomicity (as `prepare` does) pass a temporary
    name and rename it. `threads` is FFmpeg's thread count per codec (0: automatic).
    """
    container, stream, name = _open(source)
    try:
        stream.codec_context.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
        rate = _frame_rate(stream) / options.frame_stride
        frames_in = frames_out = 0
        with av.open(os.fspath(target), "w", format="mp4") as out:
            video = None
            for frame in _frames_in_order(container, stream):
                frames_in += 1
                if (frames_in - 1) % options.frame_stride:
                    continue
                if video is None:  # sized from the first frame, upright
                    rotation = _rotation(frame)
                    upright = (frame.height, frame.width) if rotation in (90, 270) else (frame.width, frame.height)
                    width, height = output_size(*upright, options.short_side)
                    stored = (height, width) if rotation in (90, 270) else (width, height)
                    video = out.add_stream(_ENCODERS[options.codec], rate=rate)
                    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
                    video.codec_context.time_base = 1 / rate
                    video.codec_context.thread_count = threads
                    video.options = {"crf": str(options.crf), "preset": options.preset, "g": str(options.keyint),
                                     "keyint_min": str(options.keyint), "sc_threshold": "0",
                                     "bf": str(options.bframes)}
                    for key in ("colorspace", "color_primaries", "color_trc"):  # same RGB on reading
                        try:
                            setattr(video.codec_context, key, getattr(frame, key))
                        except (AttributeError, ValueError, TypeError):
                            pass
                scaled = frame.reformat(width=stored[0], height=stored[1], format="yuv420p", interpolation="AREA")
                if rotation:
                    rgb = np.rot90(scaled.to_ndarray(format="rgb24"), k=rotation // 90)
                    scaled = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                    scaled = scaled.reformat(format="yuv420p")
                scaled.pts, scaled.time_base = frames_out, 1 / rate
                frames_out += 1
                for packet in video.encode(scaled):
                    out.mux(packet)
            if video is None:
                raise ValueError("no frame could be decoded")
            for packet in video.encode():
                out.mux(packet)
        return frames_in, frames_out
    finally:
        container.close()


_MAX_CRF = 39  # beyond this x264's output is too blurred to train on


def _temporary(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}{_TMP_SUFFIX}")


def _work(source: str, target: str, options: PrepOptions, threads: int) -> tuple[int, int, int] | str:
    """Worker: transcode to a temporary name, rename when complete; (frames in, out, bytes) or the reason."""
    final = Path(target)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(final)
    try:
        limit = options.max_size_ratio * os.path.getsize(source)
        frames_in, frames_out = transcode(source, tmp, options, threads)
        crf = options.crf
        while tmp.stat().st_size > limit and crf + 4 <= _MAX_CRF:  # too large: coarser quantisation
            crf += 4
            frames_in, frames_out = transcode(source, tmp, replace(options, crf=crf), threads)
        os.replace(tmp, final)
        return frames_in, frames_out, final.stat().st_size
    except Exception as err:  # noqa: BLE001 - one bad file must not stop the others; the reason is reported
        reason = str(err).removeprefix(f"{source}: ")
        if not isinstance(err, (ValueError, OSError)):  # VideoDecodeError is a ValueError; others name their kind
            reason = f"{type(err).__name__}: {reason}"
        return " ".join(reason.split()) or type(err).__name__
    finally:
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------- the data set


@dataclass(frozen=True)
class _Job:
    source: str  # absolute
    output: str  # relative to DST, POSIX separators
    label: int | str | None


def _output_names(sources: list[Path], base: Path) -> list[str]:
    """Relative output paths: the source's path under `base` with suffix .mp4; `a.avi` and `a.mkv`
    in one folder become `a.avi.mp4` and `a.mkv.mp4` rather than one file."""
    rel = [Path(os.path.relpath(s, base)) for s in sources]
    plain = [r.with_suffix(".mp4").as_posix() for r in rel]
    counts: dict[str, int] = {}
    for name in plain:
        counts[name] = counts.get(name, 0) + 1
    return [p if counts[p] == 1 else (r.as_posix() + ".mp4") for p, r in zip(plain, rel)]


def _jobs(src: Path, dst: Path, root: str | os.PathLike | None) -> tuple[list[_Job], str, list[str] | None]:
    """The files to prepare, the list file name to write, and class names for classes.txt (folders)."""
    if src.is_dir():
        base = Path(os.path.abspath(src))
        inside = Path(os.path.abspath(dst))  # a destination inside the source is not a source
        videos = [Path(os.path.abspath(p)) for p in find_videos(src)]
        videos = [p for p in videos if inside not in p.parents]
        classes = sorted({p.relative_to(base).parts[0] for p in videos if len(p.relative_to(base).parts) > 1})
        lookup = {name: i for i, name in enumerate(classes)}
        labels: list[int | str | None] = [
            lookup[p.relative_to(base).parts[0]] if len(p.relative_to(base).parts) > 1 else None for p in videos]
        list_name, names = "videos.txt", (classes or None)
    elif src.is_file():
        records, found_names = read_video_list(src, root)
        videos = [Path(os.path.abspath(r.path)) for r in records]
        base = Path(os.path.abspath(root if root is not None else src.parent))
        # String labels go back out as the same names; integer labels as integers.
        labels = [None if r.label < 0 else (found_names[r.label] if found_names else r.label) for r in records]
        list_name, names = src.with_suffix(".txt").name, None
    else:
        raise FileNotFoundError(f"{src}: no such file or folder (expected a folder of videos or a list file)")
    if not videos:
        raise ValueError(f"{src}: no videos found")
    base = Path(os.path.commonpath([base, *videos])) if videos else base
    outputs = _output_names(videos, base)
    return [_Job(str(v), o, lab) for v, o, lab in zip(videos, outputs, labels)], list_name, names


def _read_manifest(dst: Path) -> dict[str, dict]:
    """Output name -> the last manifest entry for it (a torn last line from a kill is ignored)."""
    entries: dict[str, dict] = {}
    path = dst / MANIFEST_FILE
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
                entries[entry["output"]] = entry
            except (ValueError, KeyError, TypeError):
                continue
    return entries


def _source_stamp(path: str) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_size, info.st_mtime_ns


def _is_done(job: _Job, dst: Path, manifest: dict[str, dict]) -> bool:
    entry = manifest.get(job.output)
    if entry is None or entry.get("source") != job.source or not (dst / job.output).is_file():
        return False
    try:
        return (entry.get("size"), entry.get("mtime_ns")) == _source_stamp(job.source)
    except OSError:
        return False


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}{_TMP_SUFFIX}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _check_options(dst: Path, options: PrepOptions) -> dict:
    """The existing prep.json (or a new one); files prepared with other options must not mix."""
    path = dst / PREP_FILE
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
        old = meta["options"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a prep.json written by `videomae prep` ({err})") from err
    new = asdict(options)
    defaults = asdict(PrepOptions())  # a field newer than the prep.json had its default then
    changed = [f"{k} {old.get(k, defaults[k])!r} -> {v!r}" for k, v in new.items() if old.get(k, defaults[k]) != v]
    if changed:
        raise ValueError(f"{dst}: already prepared with other options ({', '.join(changed)}); "
                         "use another destination or the same options")
    return meta


def _clean_temporaries(dst: Path) -> int:
    """Remove files a killed run left under temporary names."""
    removed = 0
    for path in dst.rglob(f"*{_TMP_SUFFIX}"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _list_line(output: str, label: int | str | None) -> str:
    return output if label is None else f"{output} {label}"


def prepare(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    root: str | os.PathLike | None = None,
    short_side: int = PrepOptions.short_side,
    frame_stride: int = PrepOptions.frame_stride,
    keyint: int = PrepOptions.keyint,
    crf: int = PrepOptions.crf,
    preset: str = PrepOptions.preset,
    bframes: int = PrepOptions.bframes,
    codec: str = PrepOptions.codec,
    max_size_ratio: float = PrepOptions.max_size_ratio,
    workers: int | None = None,
    progress: bool = True,
) -> PrepSummary:
    """Rewrite the videos of `src` (a folder, searched recursively, or a `path label` / CSV list)
    into `dst`, keeping their relative layout, and write `dst/prep.json` and a list file.

    The list file (`videos.txt` for a folder, the source list's name with `.txt` otherwise) has
    the source's labels and paths relative to `dst`; files that failed are left out of it. For a
    folder of class folders `dst` keeps the class folders (so `load_records(dst)` works) and gets
    `classes.txt`. `root` resolves a list's relative paths (default: the list's folder).
    `workers` processes encode in parallel (default: every CPU). Rerunning skips finished files.

    Raises:
        FileNotFoundError: `src` does not exist.
        ValueError: bad options, no videos, or `dst` was prepared before with other options.
    """
    started = time.time()
    options = PrepOptions(short_side, frame_stride, keyint, crf, preset, bframes, codec, max_size_ratio)
    src, dst = Path(src), Path(dst)
    jobs, list_name, class_names = _jobs(src, dst, root)
    if dst.exists() and not dst.is_dir():
        raise ValueError(f"{dst}: exists and is not a folder")
    dst.mkdir(parents=True, exist_ok=True)
    from . import __version__

    old = _check_options(dst, options)
    meta = {"format": "videomae-prep", "version": __version__, "frame_stride": options.frame_stride,
            "options": asdict(options), "runs": old.get("runs", [])}
    _write_atomic(dst / PREP_FILE, json.dumps(meta, indent=2) + "\n")  # before any file: a killed run is described
    if _clean_temporaries(dst):
        log.info("%s: removed files a previous run left unfinished", dst)

    manifest = _read_manifest(dst)
    results: dict[str, FileResult] = {}
    todo = []
    for job in jobs:
        if _is_done(job, dst, manifest):
            results[job.output] = FileResult(job.source, job.output, job.label, skipped=True,
                                             bytes_in=os.path.getsize(job.source),
                                             bytes_out=(dst / job.output).stat().st_size)
        else:
            todo.append(job)
    workers = max(1, min(workers or os.cpu_count() or 1, max(1, len(todo))))
    threads = max(1, (os.cpu_count() or 1) // workers)
    summary = PrepSummary(dst=str(dst), list_file=str(dst / list_name), skipped=len(jobs) - len(todo))

    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    with open(dst / MANIFEST_FILE, "a") as manifest_file, \
            tqdm(total=len(jobs), initial=len(jobs) - len(todo), unit="file", desc="prep", disable=not progress,
                 dynamic_ncols=True) as bar, logging_redirect_tqdm():
        for job, outcome in _run(todo, dst, options, workers, threads):
            if isinstance(outcome, str):
                log.warning("%s: %s", job.source, outcome)
                results[job.output] = FileResult(job.source, job.output, job.label, error=outcome)
            else:
                size, mtime_ns = _source_stamp(job.source)
                frames_in, frames_out, bytes_out = outcome
                manifest_file.write(json.dumps({"output": job.output, "source": job.source, "size": size,
                                                "mtime_ns": mtime_ns, "frames_in": frames_in,
                                                "frames_out": frames_out, "bytes": bytes_out}) + "\n")
                manifest_file.flush()
                results[job.output] = FileResult(job.source, job.output, job.label, frames_in=frames_in,
                                                 frames_out=frames_out, bytes_in=size, bytes_out=bytes_out)
            bar.update(1)

    for job in jobs:
        result = results[job.output]
        if result.error is not None:
            summary.failures.append((job.source, result.error))
            continue
        summary.done += not result.skipped
        summary.bytes_in += result.bytes_in
        summary.bytes_out += result.bytes_out
    lines = [_list_line(job.output, job.label) for job in jobs if results[job.output].error is None]
    _write_atomic(dst / list_name, "".join(line + "\n" for line in lines))
    if class_names:
        _write_atomic(dst / "classes.txt", "".join(name + "\n" for name in class_names))
    summary.seconds = time.time() - started
    meta["runs"].append({
        "source": str(src.resolve()), "list_file": list_name, "started": time.strftime("%Y-%m-%dT%H:%M:%S",
                                                                                    time.localtime(started)),
        "seconds": round(summary.seconds, 2), "done": summary.done, "skipped": summary.skipped,
        "failed": summary.failed, "bytes_in": summary.bytes_in, "bytes_out": summary.bytes_out,
        "ratio": round(summary.ratio, 4)})
    _write_atomic(dst / PREP_FILE, json.dumps(meta, indent=2) + "\n")
    return summary


def _run(todo: list[_Job], dst: Path, options: PrepOptions, workers: int, threads: int
         ) -> Iterator[tuple[_Job, tuple[int, int, int] | str]]:
    """Each job with its outcome, in completion order; in this process when `workers` is 1."""
    if workers == 1:
        for job in todo:
            yield job, _work(job.source, str(dst / job.output), options, threads)
        return
    # fork starts workers in milliseconds; the work touches only PyAV and numpy, no threads of ours.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    pending: dict[Future, _Job] = {}
    queue = iter(todo)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        try:
            while True:
                while len(pending) < 2 * workers:  # a bounded queue: a million files are not all submitted
                    job = next(queue, None)
                    if job is None:
                        break
                    pending[pool.submit(_work, job.source, str(dst / job.output), options, threads)] = job
                if not pending:
                    return
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    job = pending.pop(future)
                    try:
                        yield job, future.result()
                    except Exception as err:  # noqa: BLE001 - a worker that died (out of memory, a crash)
                        yield job, f"worker failed: {type(err).__name__}: {err}"
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def stored_frame_stride(data_path: str | os.PathLike) -> int:
    """The frame stride a data set was prepared with (`prep.json` in the folder, or next to the
    list file); 1 when there is none, i.e. the videos are the originals."""
    path = Path(data_path)
    meta_path = (path if path.is_dir() else path.parent) / PREP_FILE
    if not meta_path.is_file():
        return 1
    try:
        stride = json.loads(meta_path.read_text())["frame_stride"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{meta_path}: no frame_stride in it ({err})") from err
    if not isinstance(stride, int) or isinstance(stride, bool) or stride < 1:
        raise ValueError(f"{meta_path}: frame_stride must be a positive integer, got {stride!r}")
    return stride


def video_frame_stride(path: str | os.PathLike) -> int:
    """The frame stride one video was stored with: from the `prep.json` of the `videomae prep`
    output that holds it (its folder or the nearest one above: prep keeps the source's
    sub-folders), else 1. Inference reads it so that a clip spans the source frames it would in
    the original video (a few stat calls a video, nothing beside decoding)."""
    folder = Path(path).resolve().parent
    for parent in (folder, *folder.parents):
        if (parent / PREP_FILE).is_file():
            return stored_frame_stride(parent)
    return 1
