"""Fuzz the decode + preprocess path with mutated videos, for a fixed time budget.

Small valid videos are written first, one per container / codec family (H.264 in MP4 and MKV,
H.264 with an AAC audio track and a rotation in MP4, VP8 and VP9 in WebM, MPEG-4 Part 2 and
MJPEG in AVI, FFV1 in MKV, PNG with alpha in MOV, MPEG-2 in MPEG-TS, GIF). Then, until the
budget is spent, a mutant of one of them is made (byte and bit flips, truncation, a duplicated,
deleted or zeroed chunk, random bytes inserted, a corrupted header; one to three at a time) and
handed to a worker process, which runs on it:

    probe_video(path), probe_video(path, count_frames=False)
    read_video(path, ...) with the indices [0], [last], [last, 0, middle], every frame, a clip
        chosen from the frame count, and with resize=24
    VideoMAEImageProcessor(size=32, crop_size=32) on the frames read

The only acceptable outcomes of each call are a result or a `VideoDecodeError` / `ValueError`.
Anything else is counted and its input kept: another exception type (with its traceback), a
hang (no answer within --timeout seconds: the worker is killed) or a crash (the worker died,
e.g. on a signal). Such inputs are written to --save-dir with a JSON record (seed, input
number, base video, mutations, outcome) and can be replayed with --replay FILE. Every mutant is
a pure function of (--seed, input number), so a run is reproducible too.

    python benchmarks/fuzz_decode.py --seconds 600 --seed 0 --save-dir fuzz-findings
    python benchmarks/fuzz_decode.py --replay fuzz-findings/00001234.mkv
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import random
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

# (file name, codec, pixel format, source format, encoder options)
SEEDS = [
    ("h264.mp4", "libx264", "yuv420p", "rgb24", {"g": "4", "bf": "2", "preset": "ultrafast"}),
    ("h264_aac_rotated.mp4", "libx264", "yuv420p", "rgb24", {"g": "4", "preset": "ultrafast"}),
    ("h264.mkv", "libx264", "yuv420p", "rgb24", {"g": "4", "preset": "ultrafast"}),
    ("vp8.webm", "libvpx", "yuv420p", "rgb24", {"g": "4"}),
    ("vp9.webm", "libvpx-vp9", "yuv420p", "rgb24", {"g": "4", "deadline": "realtime", "cpu-used": "8"}),
    ("mpeg4.avi", "mpeg4", "yuv420p", "rgb24", {"g": "4"}),
    ("mjpeg.avi", "mjpeg", "yuvj420p", "rgb24", {}),
    ("ffv1.mkv", "ffv1", "yuv420p", "rgb24", {}),
    ("png_alpha.mov", "png", "rgba", "rgba", {}),
    ("mpeg2.ts", "mpeg2video", "yuv420p", "rgb24", {"g": "4"}),
    ("anim.gif", "gif", "rgb8", "rgb24", {}),
]
MUTATIONS = ("flip_bytes", "flip_bits", "truncate", "duplicate_chunk", "delete_chunk", "zero_chunk", "insert_random",
             "corrupt_header")
ACCEPTED = {"VideoDecodeError", "ValueError"}


# --------------------------------------------------------------------------- inputs
def write_seed(path: Path, codec: str, pix_fmt: str, src_format: str, options: dict[str, str],
               num_frames: int = 12, height: int = 32, width: int = 48) -> None:
    import av

    yy, xx = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(12))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = dict(options)
        audio = None
        if "aac" in path.name:
            stream.set_display_rotation(90)
            audio = container.add_stream("aac", rate=8000)
            audio.layout = "mono"
        for i in range(num_frames):
            if audio is not None:
                sound = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
                sound.sample_rate, sound.pts = 8000, i * 1024
                for packet in audio.encode(sound):
                    container.mux(packet)
            rgb = np.stack([(xx * 5 + i * 20) % 256, (yy * 7 + i * 9) % 256, ((xx + yy) * 3) % 256], -1)
            rgb[(i * 3) % height:(i * 3) % height + 6, (i * 4) % width:(i * 4) % width + 6] = 250
            image = rgb.astype(np.uint8)
            if src_format == "rgba":
                alpha = np.full((height, width, 1), 40 + 15 * i, np.uint8)
                image = np.concatenate([image, alpha], axis=-1)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=src_format)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if audio is not None:
            for packet in audio.encode():
                container.mux(packet)


def make_seeds(folder: Path) -> list[Path]:
    import av

    paths = []
    for name, codec, pix_fmt, src_format, options in SEEDS:
        if codec not in av.codecs_available:
            print(f"  (no {codec} encoder here: {name} left out)")
            continue
        path = folder / name
        write_seed(path, codec, pix_fmt, src_format, options)
        paths.append(path)
    return paths


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, list[str]]:
    """1 to 3 random mutations of `data`, and their descriptions."""
    buf = bytearray(data)
    done = []
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(MUTATIONS)
        n = len(buf)
        if n == 0:
            break
        if kind == "flip_bytes":
            k = rng.randint(1, 16)
            for _ in range(k):
                buf[rng.randrange(n)] = rng.randrange(256)
            done.append(f"{kind}({k})")
        elif kind == "flip_bits":
            k = rng.randint(1, 32)
            for _ in range(k):
                buf[rng.randrange(n)] ^= 1 << rng.randrange(8)
            done.append(f"{kind}({k})")
        elif kind == "truncate":
            cut = rng.randrange(n)
            del buf[cut:]
            done.append(f"{kind}({cut})")
        elif kind in ("duplicate_chunk", "delete_chunk", "zero_chunk"):
            start = rng.randrange(n)
            size = rng.randint(1, max(1, min(n - start, rng.choice((16, 256, 4096)))))
            if kind == "duplicate_chunk":
                at = rng.randrange(n + 1)
                buf[at:at] = buf[start:start + size]
            elif kind == "delete_chunk":
                del buf[start:start + size]
            else:
                buf[start:start + size] = bytes(size)
            done.append(f"{kind}({start},{size})")
        elif kind == "insert_random":
            at, size = rng.randrange(n + 1), rng.randint(1, 512)
            buf[at:at] = bytes(rng.randrange(256) for _ in range(size))
            done.append(f"{kind}({at},{size})")
        else:  # corrupt_header: the container's own description of the streams
            span = min(n, rng.choice((32, 256, 1024)))
            k = rng.randint(1, 8)
            for _ in range(k):
                buf[rng.randrange(span)] = rng.randrange(256)
            done.append(f"{kind}({span},{k})")
    return bytes(buf), done


def make_input(seed: int, number: int, bases: list[tuple[Path, bytes]]) -> tuple[Path, bytes, list[str]]:
    rng = random.Random(f"{seed}-{number}")
    base, data = bases[rng.randrange(len(bases))]
    mutant, done = mutate(data, rng)
    return base, mutant, done


# --------------------------------------------------------------------------- the calls under test
def exercise(path: str) -> list[tuple[str, str, str]]:
    """Every call on one input: (call, outcome, detail). Outcome: 'ok' or the exception type."""
    import torch

    from videomae import VideoMAEImageProcessor, probe_video, read_video, sample_frame_indices

    processor = VideoMAEImageProcessor(size={"shortest_edge": 32}, crop_size=32)
    results = []

    def attempt(name, call):
        try:
            value = call()
        except Exception as err:  # noqa: BLE001 - classifying every outcome is the point
            detail = str(err) if type(err).__name__ in ACCEPTED else traceback.format_exc()
            results.append((name, type(err).__name__, detail[-2000:]))
            return None
        results.append((name, "ok", ""))
        return value

    attempt("probe", lambda: probe_video(path))
    attempt("probe_estimate", lambda: probe_video(path, count_frames=False))
    patterns = {
        "read[0]": lambda: read_video(path, [0]),
        "read[last]": lambda: read_video(path, lambda n: [n - 1]),
        "read[last,0,mid]": lambda: read_video(path, lambda n: [n - 1, 0, n // 2]),
        "read_all": lambda: read_video(path),
        "read_clip": lambda: read_video(path, lambda n: sample_frame_indices(8, 2, n, np.random.default_rng(0))),
        "read_resize": lambda: read_video(path, [0], resize=24),
    }
    for name, call in patterns.items():
        frames = attempt(name, call)
        if frames is not None:
            if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
                results.append((name, "WrongResult", f"frames of shape {tuple(frames.shape)} {frames.dtype}"))
            elif name in ("read_all", "read_clip"):
                attempt(f"processor({name})", lambda f=frames: processor(f, return_tensors="pt"))
    return results


def _worker(conn, memory_limit_gb: float) -> None:
    """Run `exercise` on each path received; answer with its results."""
    import resource

    import torch

    torch.set_num_threads(1)
    if memory_limit_gb:
        limit = int(memory_limit_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import videomae  # noqa: F401 - imported before the first input, so the timeout covers decoding only

    conn.send("ready")
    while True:
        try:
            path = conn.recv()
        except EOFError:  # the driver went away
            return
        if path is None:
            return
        conn.send(exercise(path))


class Worker:
    """A worker process, restarted after a hang or a crash."""

    def __init__(self, memory_limit_gb: float) -> None:
        self.memory_limit_gb = memory_limit_gb
        self.context = mp.get_context("spawn")
        self.start()

    def start(self) -> None:
        self.conn, child = self.context.Pipe()
        self.process = self.context.Process(target=_worker, args=(child, self.memory_limit_gb), daemon=True)
        self.process.start()
        child.close()
        if not self.conn.poll(300) or self.conn.recv() != "ready":
            raise RuntimeError("the fuzz worker did not start")

    def run(self, path: str, timeout: float) -> tuple[str, object]:
        """('done', results) | ('hang', None) | ('crash', exit code)."""
        try:
            self.conn.send(path)
            if self.conn.poll(timeout):
                return "done", self.conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError):
            pass
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
            outcome = ("hang", None)
        else:
            self.process.join()
            outcome = ("crash", self.process.exitcode)
        self.start()
        return outcome

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()


# --------------------------------------------------------------------------- driver
def fuzz(args: argparse.Namespace) -> dict:
    import av
    import torch

    work = Path(tempfile.mkdtemp(prefix="fuzz-decode-"))
    save_dir = Path(args.save_dir)
    print(f"writing seed videos into {work}")
    seeds = make_seeds(work)
    bases = [(p, p.read_bytes()) for p in seeds]
    worker = Worker(args.memory_limit_gb)
    calls: Counter[str] = Counter()
    inputs: Counter[str] = Counter()
    per_base: Counter[str] = Counter()
    findings = []
    # The unmutated seeds first: each must decode completely.
    for path in seeds:
        status, results = worker.run(str(path), args.timeout)
        bad = [r for r in results or [] if r[1] != "ok"] if status == "done" else [(status, str(results), "")]
        if bad:
            raise SystemExit(f"seed video {path.name} does not decode cleanly: {bad}")
    started = time.monotonic()
    number = 0
    try:
        while time.monotonic() - started < args.seconds and (args.max_inputs is None or number < args.max_inputs):
            base, data, done = make_input(args.seed, number, bases)
            target = work / f"input{base.suffix}"
            target.write_bytes(data)
            status, results = worker.run(str(target), args.timeout)
            per_base[base.name] += 1
            record = {"seed": args.seed, "input": number, "base": base.name, "mutations": done, "size": len(data)}
            if status == "done":
                unexpected = [r for r in results if r[1] != "ok" and r[1] not in ACCEPTED]
                for _, outcome, _ in results:
                    calls[outcome] += 1
                if unexpected:
                    inputs["unexpected"] += 1
                    record.update(outcome="unexpected", calls=unexpected)
                elif all(r[1] == "ok" for r in results):
                    inputs["all calls succeeded"] += 1
                elif all(r[1] != "ok" for r in results):
                    inputs["all calls refused (VideoDecodeError / ValueError)"] += 1
                else:
                    inputs["some calls succeeded, others refused"] += 1
            else:
                inputs[status] += 1
                record.update(outcome=status, exit_code=results)
            if "outcome" in record:
                save_dir.mkdir(parents=True, exist_ok=True)
                stem = save_dir / f"{args.seed}-{number:08d}"
                shutil.copyfile(target, stem.with_suffix(base.suffix))
                stem.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
                findings.append(record)
                print(f"[{number}] {record['outcome']}: {base.name} {done} -> saved {stem.with_suffix(base.suffix)}")
                for call in record.get("calls", []):
                    print(f"    {call[0]}: {call[1]}\n{call[2]}")
            number += 1
            if args.progress_every and number % args.progress_every == 0:
                print(f"  {number} inputs, {time.monotonic() - started:.0f} s, {dict(inputs)}", flush=True)
    finally:
        worker.stop()
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - started
    summary = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "seed": args.seed, "seconds": round(elapsed, 1), "inputs": number,
        "inputs_per_second": round(number / elapsed, 1) if elapsed else None,
        "outcomes": dict(inputs), "calls": dict(calls), "inputs_per_base": dict(per_base),
        "unexpected": inputs["unexpected"], "hangs": inputs["hang"], "crashes": inputs["crash"],
        "timeout_s": args.timeout, "memory_limit_gb": args.memory_limit_gb,
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "av": av.__version__,
                     "ffmpeg": getattr(av, "ffmpeg_version_info", "?")},
    }
    return summary


def replay(path: str) -> None:
    """Run the calls on one saved input in this process, printing each outcome."""
    for call, outcome, detail in exercise(path):
        print(f"{call}: {outcome}" + (f"\n{detail}" if outcome != "ok" else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="time budget for mutants (default: 60)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the mutations (default: 0)")
    parser.add_argument("--save-dir", default="fuzz-findings", help="where inputs with unexpected outcomes go")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds one input may take (default: 20)")
    parser.add_argument("--memory-limit-gb", type=float, default=4.0,
                        help="address-space limit of the worker (default: 4; 0: none)")
    parser.add_argument("--max-inputs", type=int, default=None, help="stop after this many mutants")
    parser.add_argument("--progress-every", type=int, default=500, help="print counts every N inputs")
    parser.add_argument("--summary", default=None, help="also write the summary JSON to this file")
    parser.add_argument("--replay", metavar="FILE", help="run the calls on one saved input and exit")
    args = parser.parse_args()
    if args.replay:
        replay(args.replay)
        return
    summary = fuzz(args)
    text = json.dumps(summary, indent=2)
    print(text)
    if args.summary:
        Path(args.summary).write_text(text + "\n")
    bad = summary["unexpected"] + summary["hangs"] + summary["crashes"]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
