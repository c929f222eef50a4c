"""`videomae embed --engine ray` (Ray Data on a local Ray instance) against the best single-process
`videomae embed` on the same files, in videos/s.

    python benchmarks/embed_ray.py                                   # 96 videos of 4 s, both models
    python benchmarks/embed_ray.py --models tiny --links 4           # each file under 4 names: 384 videos

The files are the data-path benchmark's Kinetics-like videos (benchmarks/pipeline_data.py: short side
320, H.264 at libx264's defaults), made once into --data. The models are random-weight encoders
(their speed does not depend on the weights), saved to a temporary folder:

    small  VideoMAE-S (width 384, 12 blocks, 6 heads) at 16 x 112 x 112: the model takes most of the time
    tiny   width 192, 4 blocks, 3 heads, 16 x 112 x 112: the model costs about what decoding costs, so the
           data path (decode tasks, the object store, actors) is what is measured

Both engines run as the `videomae embed` command in a new process, write per-clip Parquet rows
(`--features mean`), and are timed from the command's start to its end (Python, torch and the
model loading included). The single-process
engine is tried with every `--num-workers` from 0 to the CPU count; its best is the reference.
Ray gets a local instance of every CPU, started by this script before the clock (as `ray start
--head` would be), which each command joins with `--address`, and its default actors (a quarter
of the CPUs, at least one, with CPUs / actors threads each). Runs alternate between the engines,
`--repeats` times, in turned order; the table gives the best and the median of each (on a machine
shared with other jobs, the spread between runs can exceed the difference between engines), and
the load average. Prints one JSON line per run, then the table.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

MODELS = {
    "small": dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536),
    "tiny": dict(hidden_size=192, num_hidden_layers=4, num_attention_heads=3, intermediate_size=768),
}


def save_model(name: str, folder: Path) -> Path:
    """A random-weight encoder at 16 x 112 x 112 with its processor (short side 112, centre crop)."""
    import torch

    from videomae import VideoMAEConfig, VideoMAEModel
    from videomae.processing import VideoMAEImageProcessor

    torch.manual_seed(0)
    VideoMAEModel(VideoMAEConfig(image_size=112, num_frames=16, **MODELS[name])).eval().save_pretrained(folder)
    VideoMAEImageProcessor(size={"shortest_edge": 112}, crop_size=112).save_pretrained(folder)
    return folder


def run_cli(argv: list[str]) -> float:
    """Seconds `python -m videomae ARGV` took, as a user runs it (a new process: Python, torch and,
    for Ray, the job's workers start within the time); an error if it failed."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "videomae", *argv], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"videomae {' '.join(argv)}: exit status {done.returncode}\n{done.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(tempfile.gettempdir()) / "videomae-embed-ray-data"),
                        help="folder for the generated videos (kept; reused when it holds the same set)")
    parser.add_argument("--videos", type=int, default=96)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each video")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["small", "tiny"])
    parser.add_argument("--num-clips", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--links", type=int, default=1,
                        help="embed each file under this many names (symbolic links): a longer run from the same "
                             "files, in which start-up weighs less")
    args = parser.parse_args()

    import ray
    import torch

    from machine import cpu_name
    from pipeline_data import generate

    summary = generate(args.data, args.videos, args.seconds)
    print(f"{summary['count']} videos of {args.seconds:g} s in {args.data}", file=sys.stderr)
    cpus = len(os.sched_getaffinity(0))
    ray.init(num_cpus=cpus, include_dashboard=False, logging_level=logging.WARNING)  # the cluster, up beforehand
    address = ray.get_runtime_context().gcs_address
    work = Path(tempfile.mkdtemp(prefix="embed-ray-"))
    videos = Path(args.data)
    if args.links > 1:
        videos = work / "videos"
        videos.mkdir()
        for file in sorted(Path(args.data).glob("*.mp4")):
            for k in range(args.links):
                (videos / f"{file.stem}_{k}.mp4").symlink_to(file.resolve())
    count = args.videos * args.links
    common = ["--num-clips", str(args.num_clips), "--batch-size", str(args.batch_size), "--features", "mean",
              "--no-progress"]
    table = []
    try:
        for name in args.models:
            model = str(save_model(name, work / name))
            rates: dict[str, list[float]] = {}
            for repeat in range(args.repeats):
                runs = [(f"local, --num-workers {w}", ["--num-workers", str(w), "--out", "local.parquet"])
                        for w in range(cpus + 1)] + [("ray", ["--engine", "ray", "--address", address, "--out", "ray"])]
                for label, extra in runs if repeat % 2 == 0 else runs[::-1]:
                    out = work / extra[-1]
                    shutil.rmtree(out, ignore_errors=True)
                    out.unlink(missing_ok=True)
                    extra = extra[:-1] + [str(out)]
                    seconds = run_cli(["embed", str(videos), "--model", model, *common, *extra])
                    rates.setdefault(label, []).append(count / seconds)
                    print(json.dumps({"model": name, "engine": label, "repeat": repeat, "seconds": round(seconds, 2),
                                      "videos_per_s": round(count / seconds, 3),
                                      "load_average": round(os.getloadavg()[0], 2)}), flush=True)
            table.append((name, rates))
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{cpu_name()}, {cpus} CPUs; Python {platform.python_version()}, torch {torch.__version__}, "
          f"ray {ray.__version__}; {count} videos ({args.videos} files x {args.links}), {args.num_clips} clips each, "
          f"batch {args.batch_size}")
    print("| model | best single process: best run, median | Ray Data: best run, median | Ray / single: best, median |")
    print("| --- | --- | --- | --- |")
    for name, rates in table:
        local_label = max((k for k in rates if k != "ray"), key=lambda k: max(rates[k]))
        local, ray_rates = rates[local_label], rates["ray"]
        print(f"| {name} | {max(local):.2f}, {statistics.median(local):.2f} videos/s ({local_label}) | "
              f"{max(ray_rates):.2f}, {statistics.median(ray_rates):.2f} videos/s | "
              f"{max(ray_rates) / max(local):.0%}, {statistics.median(ray_rates) / statistics.median(local):.0%} |")


if __name__ == "__main__":
    main()
