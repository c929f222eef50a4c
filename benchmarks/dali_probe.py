"""NVIDIA DALI's video decoder on the data path's files: decode-only clips/s at the trainer's own
frame indices, beside pipeline.py's PyAV and PyNvVideoCodec rows, to choose a GPU decoder by
measurement. On an H200 it lost to both (11-16 clips/s against 54-89 and 83-162; RESULTS.md,
"GPU decoders"), so the library has no DALI decoder; this script keeps the measurement repeatable.

Input: a folder made by `benchmarks/pipeline.py generate [prep]` (its raw/ and prepared-s4/), or
any folder of videos. Cases, per variant:
- `fn.decoders.video` (device "mixed": demuxing on DALI's CPU threads, NVDEC decoding), fed the
  encoded files and the trainer's frame indices (`frames`: pipeline.py's decode-stage indices,
  same seed, so the same clips as its other rows), batch x DALI threads, and once without the
  frame index DALI builds per file (`build_index=False`);
- `fn.readers.video` (GPU): DALI picking the clips itself (sequence_length 16 at the sampling
  stride, random shuffle), the reader a DALI training loop would use.
Frame counts come from `probe_video` (read_video's count) before timing. A pixel check compares a few
DALI clips with `read_video`'s frames at the same indices (the colour conversion may differ a few levels; a
wrong frame differs by far more). The CPU backend decodes VP8 / VP9 / MJPEG only (no H.264):
`--device cpu` on such files checks the script without a GPU.

    python benchmarks/dali_probe.py --dir D [--results R.json] [--count N]
    python benchmarks/dali_probe.py --dir D --variant vp9 --device cpu   # smoke test
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from pipeline import _clip_indices  # noqa: E402
from videomae.data.datasets import load_records  # noqa: E402
from videomae.prep import stored_frame_stride  # noqa: E402
from videomae.video import probe_video, read_video  # noqa: E402

NUM_FRAMES = 16


def videos(folder: Path, count: int | None) -> list[str]:
    listing = folder / "videos.txt"
    records, _ = load_records(str(listing if listing.is_file() else folder), labeled=False)
    return [r.path for r in records][:count]


def trainer_indices(paths: list[str], rate: int) -> list[np.ndarray]:
    """Each video's training clip, as pipeline.py's decode stage draws it (num_sample 1, seed 0)."""
    out = []
    for index, path in enumerate(paths):
        total = probe_video(path).num_frames  # read_video's count (a demux pass)
        out.append(np.asarray(_clip_indices(path, index, NUM_FRAMES, rate, 1, 0, total), dtype=np.int32))
    return out


def decoder_pipeline(paths: list[str], frames: list[np.ndarray], batch: int, threads: int, device: str,
                     build_index: bool = True):
    """A DALI pipeline that decodes `batch` videos an iteration, cycling through `paths`."""
    from nvidia.dali import fn, pipeline_def, types

    order = iter(range(10**9))

    def source():
        picks = [next(order) % len(paths) for _ in range(batch)]
        return ([np.fromfile(paths[i], dtype=np.uint8) for i in picks], [frames[i] for i in picks])

    @pipeline_def(batch_size=batch, num_threads=threads, device_id=0 if device != "cpu" else None,
                  prefetch_queue_depth=2)
    def pipe():
        encoded, wanted = fn.external_source(source=source, num_outputs=2, batch=True,
                                             dtype=[types.UINT8, types.INT32])
        return fn.decoders.video(encoded, device="mixed" if device != "cpu" else "cpu", frames=wanted,
                                 build_index=build_index)

    p = pipe()
    p.build()
    return p


def reader_pipeline(paths: list[str], batch: int, threads: int, rate: int):
    from nvidia.dali import fn, pipeline_def

    @pipeline_def(batch_size=batch, num_threads=threads, device_id=0, prefetch_queue_depth=2)
    def pipe():
        return fn.readers.video(device="gpu", filenames=paths, sequence_length=NUM_FRAMES, stride=rate,
                                random_shuffle=True, initial_fill=4 * batch, seed=0, skip_vfr_check=True,
                                name="reader")

    p = pipe()
    p.build()
    return p


def sync(device: str) -> None:
    if device != "cpu":
        torch.cuda.synchronize()


def timed_runs(p, iterations: int, device: str) -> tuple[float, int]:
    """Seconds for `iterations` runs after one warm-up run, and the frames they returned."""
    p.run()
    sync(device)
    frames = 0
    started = time.perf_counter()
    for _ in range(iterations):
        (out,) = p.run()
        frames += sum(int(shape[0]) for shape in out.shape())
    sync(device)
    return time.perf_counter() - started, frames


def pixel_check(paths: list[str], frames: list[np.ndarray], device: str, count: int = 4) -> dict:
    """DALI's frames against read_video's at the same indices: mean, 99.9th percentile and max
    absolute difference (levels of 255), and the share of DALI frames whose closest read_video
    frame among the index and its 2 neighbours each side is the index itself (same frames)."""
    count = min(count, len(paths))
    p = decoder_pipeline(paths[:count], frames[:count], count, 2, device)
    (out,) = p.run()
    if device != "cpu":
        out = out.as_cpu()
    diffs, same = [], []
    for i in range(count):
        lo, hi = max(0, int(frames[i].min()) - 2), int(frames[i].max()) + 3
        window = read_video(paths[i], lambda n, lo=lo, hi=hi: np.arange(lo, min(hi, n)))
        window = window.numpy().astype(np.int16)  # (frames lo.., H, W, 3)
        theirs = np.asarray(out[i]).astype(np.int16)
        if window.shape[1:] != theirs.shape[1:]:
            return {"error": f"{paths[i]}: frames {theirs.shape[1:]} from DALI, {window.shape[1:]} from read_video"}
        for j, index in enumerate(frames[i]):
            errors = [np.abs(theirs[j] - window[k - lo]).mean() if 0 <= k - lo < len(window) else np.inf
                      for k in range(index - 2, index + 3)]
            same.append(int(np.argmin(errors)) == 2)
            diffs.append(np.abs(theirs[j] - window[index - lo]).ravel())
    d = np.concatenate(diffs)
    return {"mean": float(d.mean()), "p99_9": float(np.percentile(d, 99.9)), "max": int(d.max()),
            "same_frames": float(np.mean(same))}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="pipeline.py's --dir (or any folder holding video folders)")
    parser.add_argument("--variant", action="append", help="sub-folders to measure (default: raw, prepared-s4)")
    parser.add_argument("--count", type=int, default=None, help="videos per variant (default: all)")
    parser.add_argument("--batch", type=int, action="append", help="videos an iteration (default: 16, 64)")
    parser.add_argument("--threads", type=int, action="append", help="DALI CPU threads (default: 4, 8, 15)")
    parser.add_argument("--sampling-rate", type=int, default=4)
    parser.add_argument("--device", default="gpu", choices=("gpu", "cpu"))
    parser.add_argument("--results", type=Path)
    args = parser.parse_args(argv)
    import nvidia.dali

    head = {"dali": nvidia.dali.__version__, "torch": torch.__version__, "python": platform.python_version(),
            "device": torch.cuda.get_device_name() if args.device != "cpu" else "cpu", "cpus": os.cpu_count()}
    print(json.dumps(head), flush=True)
    rows: list[dict] = []

    def emit(row: dict) -> None:
        rows.append({**head, **row})
        print(json.dumps(row), flush=True)
        if args.results:
            args.results.write_text(json.dumps(rows, indent=1))

    for variant in args.variant or ["raw", "prepared-s4"]:
        folder = Path(args.dir) / variant
        if not folder.is_dir():
            emit({"variant": variant, "error": f"{folder}: no such folder"})
            continue
        paths = videos(folder, args.count)
        rate = max(1, args.sampling_rate // stored_frame_stride(folder))
        frames = trainer_indices(paths, rate)
        try:
            emit({"variant": variant, "case": "pixels vs read_video", **pixel_check(paths, frames, args.device)})
        except Exception as err:  # noqa: BLE001 (a failing case is a result)
            emit({"variant": variant, "case": "pixels vs read_video", "error": repr(err)[:300]})
        cases = [(b, t, True) for b in (args.batch or [16, 64]) for t in (args.threads or [4, 8, 15])]
        for batch, threads, index in cases + [(16, 8, False)]:
            row = {"variant": variant, "case": "decoders.video, trainer's indices", "batch": batch,
                   "threads": threads, "build_index": index, "videos": len(paths)}
            try:
                p = decoder_pipeline(paths, frames, batch, threads, args.device, index)
                seconds, decoded = timed_runs(p, max(1, math.ceil(len(paths) / batch)), args.device)
                emit({**row, "clips_per_s": decoded / NUM_FRAMES / seconds, "seconds": seconds})
                del p
            except Exception as err:  # noqa: BLE001
                emit({**row, "error": repr(err)[:300]})
        if args.device == "cpu":
            continue
        for batch in args.batch or [16, 64]:
            row = {"variant": variant, "case": "readers.video (DALI's own clips)", "batch": batch, "threads": 4}
            try:
                p = reader_pipeline(paths, batch, 4, rate)
                seconds, decoded = timed_runs(p, max(1, math.ceil(len(paths) / batch)), args.device)
                emit({**row, "clips_per_s": decoded / NUM_FRAMES / seconds, "seconds": seconds})
                del p
            except Exception as err:  # noqa: BLE001
                emit({**row, "error": repr(err)[:300]})
    return rows


if __name__ == "__main__":
    main()
