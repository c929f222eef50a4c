"""From video files on disk to the GPU: where the data path loses time, measured stage by stage.

Stages (each fits one call on the GPU machine; results are appended to one JSON file):

  generate  a Kinetics-like data set (benchmarks/pipeline_data.py): 512 H.264 files, 10 s, 30 fps,
            short side 320, libx264 defaults
  prep      `videomae prep` of it (the fast-decoding form)
  decode    decode-only clips/s on the trainer's own frame indices: PyAV in N processes, and NVDEC
            (PyNvVideoCodec, N threads with a reused decoder each) where there is a GPU
  loader    loader-only clips/s: the trainer's own DataLoader (chunks, workers, masks, pinning)
  model     model-only clips/s: the pretraining step on clips already on the device
  pretrain  end to end: `videomae.train.pretrain` on the files
  embed     end to end: `videomae embed` on the files
  report    the table (each figure as a fraction of model-only and of the decode limit)

    python benchmarks/pipeline.py all --dir /tmp/pipe --results benchmarks/pipeline.json
    python benchmarks/pipeline.py decode loader --dir /tmp/pipe --variant prepared ...
    python benchmarks/pipeline.py all --quick   # a tiny CPU run that checks the script
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import pipeline_data  # noqa: E402

from videomae import VideoMAEConfig, VideoMAEForPreTraining  # noqa: E402
from videomae.data.collate import MaskGenerator, TrainCollate  # noqa: E402
from videomae.data.datasets import VideoClipDataset, load_records  # noqa: E402
from videomae.data.sampler import AUGMENT, ResumableSampler, RunSampler, sample_seed  # noqa: E402
from videomae.prep import stored_frame_stride  # noqa: E402
from videomae.sampling import sample_frame_indices  # noqa: E402
from videomae.train.engine import to_model_input  # noqa: E402
from videomae.video import read_video  # noqa: E402

TINY = dict(image_size=32, patch_size=8, num_frames=4, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=64, decoder_hidden_size=32, decoder_num_hidden_layers=1, decoder_num_attention_heads=2,
            decoder_intermediate_size=64)


# --------------------------------------------------------------------------- setup
class Setup:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.quick = args.quick
        self.cuda = torch.cuda.is_available() and not args.quick
        self.device = torch.device("cuda" if self.cuda else "cpu")
        self.dir = Path(args.dir)
        self.workers = args.workers if args.workers is not None else max(1, (os.cpu_count() or 2) - 1)
        self.batch = 4 if self.quick else args.batch
        self.config = VideoMAEConfig(**TINY) if self.quick else VideoMAEConfig()
        self.num_frames = self.config.num_frames
        self.rate = args.sampling_rate
        self.size = self.config.image_size
        self.short_side = round(self.size * 320 / 224)

    def data(self, variant: str) -> Path:
        return self.dir / variant

    def records(self, variant: str) -> list:
        folder = self.data(variant)
        listing = folder / "videos.txt"
        records, _ = load_records(str(listing if listing.is_file() else folder), labeled=False)
        return records

    def frame_stride(self, variant: str) -> int:
        return stored_frame_stride(self.data(variant))

    def resize_to(self, variant: str) -> int:
        """The short side the trainer resizes to: the recipe's 320 at 224 px, or the prepared
        short side where `prep` stored less (the recipe asks for at least 256)."""
        stored = PREPARED.get(variant, {}).get("short_side")
        return self.short_side if self.quick or stored is None else min(stored, self.short_side)


def record(results: Path, entry: dict) -> None:
    entry = {"time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), **entry}
    existing = json.loads(results.read_text()) if results.is_file() else []
    existing.append(entry)
    results.write_text(json.dumps(existing, indent=1))
    print(json.dumps(entry), flush=True)


# --------------------------------------------------------------------------- stages
def stage_generate(s: Setup) -> dict:
    count = 16 if s.quick else s.args.count
    seconds = 3.0 if s.quick else 10.0
    summary = pipeline_data.generate(s.data("raw"), count=count, seconds=seconds, workers=os.cpu_count())
    return {"stage": "generate", "videos": summary["count"], "bits_per_pixel": summary["bits_per_pixel"],
            "min_bits_per_pixel": summary["min_bits_per_pixel"], "bytes": summary["bytes"],
            "audio": summary["with_audio"], "variable_rate": summary["variable_rate"],
            "portrait": summary["portrait"], "seconds": summary["seconds_to_make"]}


# prepared variants: `videomae prep` options (the defaults; every 4th frame kept; and at short side 256)
PREPARED = {"prepared": {}, "prepared-s4": {"frame_stride": 4},
            "prepared-s4-256": {"frame_stride": 4, "short_side": 256}}


def stage_prep(s: Setup, variant: str) -> dict:
    from videomae.prep import prepare

    started = time.perf_counter()
    summary = prepare(str(s.data("raw")), str(s.data(variant)), workers=os.cpu_count(), progress=False,
                      **PREPARED[variant])
    return {"stage": "prep", "variant": variant, "seconds": time.perf_counter() - started, "done": summary.done,
            "failed": summary.failed, "disk_ratio": summary.ratio,
            "options": json.loads((s.data(variant) / "prep.json").read_text()).get("options")}


def _clip_indices(path: str, index: int, num_frames: int, rate: int, num_sample: int, seed: int, count: int) -> list:
    generator = torch.Generator().manual_seed(sample_seed(seed, 0, index, AUGMENT))
    return np.concatenate([sample_frame_indices(num_frames, rate, count, generator) for _ in range(num_sample)])


def _pyav_decode(job: tuple[str, int, int, int, int, int]) -> int:
    torch.set_num_threads(1)
    path, index, num_frames, rate, num_sample, short_side = job
    frames = read_video(path, lambda n: _clip_indices(path, index, num_frames, rate, num_sample, 0, n),
                        resize=short_side)
    return frames.shape[0] // num_frames


def stage_decode(s: Setup, variant: str) -> list[dict]:
    """Decode-only: the frames of each video's training clip(s), nothing else."""
    records = s.records(variant)
    rate = s.rate // s.frame_stride(variant)
    out = []
    for num_sample in (1, 2):
        jobs = [(r.path, i, s.num_frames, rate, num_sample, s.resize_to(variant)) for i, r in enumerate(records)]
        with ProcessPoolExecutor(s.workers) as pool:
            list(pool.map(_pyav_decode, jobs[: 2 * s.workers]))  # warm the processes
            started = time.perf_counter()
            clips = sum(pool.map(_pyav_decode, jobs, chunksize=2))
            seconds = time.perf_counter() - started
        out.append({"stage": "decode", "variant": variant, "decoder": "pyav", "processes": s.workers,
                    "num_sample": num_sample, "videos_per_s": len(jobs) / seconds, "clips_per_s": clips / seconds})
    if s.cuda:
        try:
            out.extend(_nvdec_decode(s, records, rate))
        except Exception as err:  # noqa: BLE001 (report any failure of the optional decoder)
            out.append({"stage": "decode", "variant": variant, "decoder": "nvdec", "error": repr(err)})
    for entry in out:
        entry.setdefault("variant", variant)
    return out


def _nvdec_decode(s: Setup, records: list, rate: int) -> list[dict]:
    """NVDEC in 8, 16 and 32 threads, each with its own decoder pointed at file after file (as
    `NvdecDecoder` does), timed once every thread has made its decoder and decoded one clip: as
    the PyAV pool is warmed first. Making a decoder costs about 0.1 s and they are made one at a
    time: timed from the threads' start, a run over 160 files mostly measured decoder creation
    (32 threads: about 3 s of it)."""
    import PyNvVideoCodec as nvc

    results = []
    for threads in (8, 16, 32):
        lock = threading.Lock()
        todo = list(enumerate(records)) * s.args.repeat
        done = [0]
        ready = threading.Barrier(threads + 1, timeout=300)  # broken (an error) rather than a hang

        def clip(decoder, index: int, rec) -> torch.Tensor:  # noqa: ANN001
            idx = _clip_indices(rec.path, index, s.num_frames, rate, 1, 0, len(decoder))
            return torch.stack([torch.from_dlpack(f) for f in decoder.get_batch_frames_by_index([int(i) for i in idx])])

        def work(first: int, lock: threading.Lock = lock, todo: list = todo, done: list = done,
                 ready: threading.Barrier = ready) -> None:
            rec = records[first % len(records)]
            decoder = nvc.SimpleDecoder(rec.path, gpu_id=0, use_device_memory=True,
                                        output_color_type=nvc.OutputColorType.RGBP)
            clip(decoder, first, rec)  # warm
            ready.wait()
            while True:
                with lock:
                    if not todo:
                        return
                    index, rec = todo.pop()
                decoder.reconfigure_decoder(rec.path)
                frames = clip(decoder, index, rec)
                with lock:
                    done[0] += frames.shape[0] // s.num_frames

        pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for t in pool:
            t.start()
        ready.wait()
        torch.cuda.synchronize()
        started = time.perf_counter()
        for t in pool:
            t.join()
        torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        results.append({"stage": "decode", "decoder": "nvdec", "threads": threads, "num_sample": 1,
                        "videos_per_s": done[0] / seconds, "clips_per_s": done[0] / seconds,
                        "warm": True})
    return results


def _dataset(s: Setup, variant: str, num_sample: int) -> VideoClipDataset:
    stride = s.frame_stride(variant)
    kwargs = {"frame_stride": stride} if stride != 1 else {}
    return VideoClipDataset(s.records(variant), s.num_frames, s.rate, s.size, s.resize_to(variant), "multiscale", False,
                            num_sample, 0, **kwargs)


def stage_loader(s: Setup, variant: str) -> list[dict]:
    """Loader-only: the trainer's DataLoader, its batches pinned and copied to the device."""
    from videomae.train.options import PretrainOptions
    from videomae.train.runner import DistInfo, chunk_size, make_loader, run_batches

    out = []
    for num_sample in (1, 2):
        per_device = s.batch // num_sample
        dataset = _dataset(s, variant, num_sample)
        grid = (s.num_frames // s.config.tubelet_size, s.size // s.config.patch_size, s.size // s.config.patch_size)
        collate = TrainCollate((s.num_frames, 3, s.size, s.size), MaskGenerator(grid, 0.9, "tube"), seed=0)
        options = PretrainOptions(num_workers=s.workers)
        dist = DistInfo(device=s.device)
        chunk = chunk_size(per_device, s.workers)
        per_epoch = len(dataset) // per_device * per_device
        sampler = RunSampler(ResumableSampler(len(dataset), seed=0), per_epoch, 1000)
        prefetch = max(2, math.ceil(2 * (per_device // chunk) / s.workers))
        loader = make_loader(dataset, sampler, chunk, collate, options, dist, drop_last=False, prefetch_factor=prefetch)
        batches = run_batches(loader, per_device // chunk)
        warm, steps = (2, 6) if s.quick else (3, 16)
        clips = 0
        for i in range(warm + steps):
            if i == warm:
                if s.cuda:
                    torch.cuda.synchronize()
                started, clips = time.perf_counter(), 0
            batch = next(batches)
            pixels = to_model_input(batch["pixel_values"], s.device, (0.45,) * 3, (0.225,) * 3)
            clips += pixels.shape[0]
        if s.cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        del batches, loader
        out.append({"stage": "loader", "variant": variant, "workers": s.workers, "batch": s.batch,
                    "num_sample": num_sample, "clips_per_s": clips / seconds,
                    "videos_per_s": clips / num_sample / seconds})
    return out


def stage_model(s: Setup) -> dict:
    """Model-only: the pretraining step (bf16 autocast, fused AdamW, CPU-made tube masks) on
    uint8 clips already on the device."""
    model = VideoMAEForPreTraining(s.config).to(s.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), fused=s.cuda)
    grid = (s.num_frames // s.config.tubelet_size, s.size // s.config.patch_size, s.size // s.config.patch_size)
    masks = MaskGenerator(grid, 0.9, "tube")
    pixels = torch.randint(0, 256, (s.batch, s.num_frames, 3, s.size, s.size), dtype=torch.uint8, device=s.device)
    generator = torch.Generator().manual_seed(0)
    dtype = torch.bfloat16 if s.cuda else None

    def step() -> None:
        mask = masks(s.batch, generator)
        x = to_model_input(pixels, s.device, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
        with torch.autocast(s.device.type, dtype=dtype, enabled=dtype is not None):
            loss = model(x, bool_masked_pos=mask).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    warm, steps = (2, 4) if s.quick else (5, 30)
    for _ in range(warm):
        step()
    if s.cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if s.cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return {"stage": "model", "batch": s.batch, "clips_per_s": steps * s.batch / seconds,
            "precision": "bf16" if dtype else "fp32"}


def stage_pretrain(s: Setup, variant: str, num_sample: int = 1, decoder: str = "pyav") -> dict:
    """End to end: `videomae.train.pretrain` on the files; clips/s from its own metrics, steps
    after the first few (start-up) only."""
    from videomae.train import pretrain
    from videomae.train.metrics import read_metrics

    steps = 12 if s.quick else s.args.steps
    out_dir = Path(tempfile.mkdtemp(prefix="pretrain-", dir=s.dir))
    listing = s.data(variant) / "videos.txt"
    kwargs: dict[str, Any] = dict(
        data=str(listing if listing.is_file() else s.data(variant)), output_dir=str(out_dir), model="base",
        batch_size=s.batch // num_sample, num_sample=num_sample, epochs=1000, max_steps=steps,
        num_workers=s.workers, sampling_rate=s.rate, flip=False, log_every=2, checkpoint_every=10**9, progress=False,
        device=str(s.device), precision="bf16" if s.cuda else "fp32", warmup_steps=10, decoder=decoder,
        short_side=s.resize_to(variant))
    if s.quick:
        kwargs.update(model="small", config_overrides=TINY)
    started = time.perf_counter()
    metrics = pretrain(**kwargs)
    total = time.perf_counter() - started
    train = [r for r in read_metrics(out_dir) if r["kind"] == "train"]
    skip = 2 if s.quick else 6
    tail = [r for r in train if r["step"] > skip]
    # each record covers log_every steps: weight by clips (equal per record) -> mean of rates is
    # wrong; use total clips over total time
    seconds = sum(2 * s.batch / r["clips_per_s"] for r in tail if r["clips_per_s"])
    clips = 2 * s.batch * len(tail)
    shares = [r["data_share"] for r in tail if r.get("data_share") is not None]
    return {"stage": "pretrain", "variant": variant, "decoder": decoder, "workers": s.workers, "batch": s.batch,
            "num_sample": num_sample,
            "clips_per_s": clips / seconds if seconds else None,
            "videos_per_s": clips / num_sample / seconds if seconds else None,
            "data_share": sum(shares) / len(shares) if shares else None, "steps": metrics["step"],
            "wall_seconds": total}


def stage_embed(s: Setup, variant: str, decoders: list[str] | None = None) -> list[dict]:
    """End to end: `videomae embed FOLDER` as a user runs it (a ViT-B written here with random
    weights; one clip per video, from its middle), timed whole; and the library's
    `embed_videos` in this process with the model already loaded: PyAV in worker processes
    (the decoder resizing, as the command does, and the processor resizing), and with "nvdec" in
    `decoders`, NVDEC in 8 threads."""
    from videomae.pipeline import embed_videos, load_feature_model, load_processor

    model_dir = s.dir / "vitb-model"
    if not (model_dir / "config.json").is_file():
        VideoMAEForPreTraining(s.config).save_pretrained(model_dir)
    out = s.dir / f"embed-{variant}.npy"
    paths = [r.path for r in s.records(variant)] * s.args.repeat
    listing = s.dir / f"embed-{variant}-list.txt"  # the list the command reads (each video `--repeat` times)
    listing.write_text("".join(f"{p}\n" for p in paths))
    command = [sys.executable, "-m", "videomae", "embed", str(listing), "--model", str(model_dir),
               "--out", str(out), "--num-clips", "1", "--batch-size", "32", "--num-workers", str(s.workers)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    results = [{"stage": "embed", "variant": variant, "how": "videomae embed, whole command", "videos": len(paths),
                "repeat": s.args.repeat,
                "videos_per_s": len(paths) / seconds, "seconds": seconds, "rc": done.returncode,
                "stderr_tail": done.stderr[-300:]}]
    model, _ = load_feature_model(str(model_dir))
    model.to(s.device).eval()
    processor = load_processor(str(model_dir), model.config)
    list(embed_videos(paths[:8], model, processor, num_clips=1, batch_size=32, num_workers=0))  # warm the model
    cases = [("embed_videos, model loaded, decoder resizes", dict(num_workers=s.workers, decoder_resize=True)),
             ("embed_videos, model loaded, processor resizes", dict(num_workers=s.workers))]
    if "nvdec" in (decoders or []):
        cases.append(("embed_videos, model loaded, NVDEC 8 threads", dict(num_workers=8, decoder="nvdec")))
    for how, options in cases:
        try:
            started = time.perf_counter()
            done_at = [time.perf_counter() - started for result in embed_videos(
                paths, model, processor, num_clips=1, batch_size=32, **options) if result.ok]
        except Exception as err:  # noqa: BLE001 (an optional decoder's failure is a result, not the end)
            results.append({"stage": "embed", "variant": variant, "how": how, "error": repr(err)[:300]})
            continue
        count, seconds = len(done_at), done_at[-1] if done_at else 0.0
        # start-up (workers, the first batch) against the steady rate after the first batch of 32
        after = done_at[31:] if count > 32 else []
        results.append({"stage": "embed", "variant": variant, "how": how, "workers": options["num_workers"],
                        "repeat": s.args.repeat,
                        "videos": count, "videos_per_s": count / seconds if seconds else None, "seconds": seconds,
                        "first_batch_s": done_at[min(31, count - 1)] if count else None,
                        "videos_per_s_after_first_batch": (len(after) - 1) / (after[-1] - after[0])
                        if len(after) > 1 and after[-1] > after[0] else None})
    return results


# --------------------------------------------------------------------------- report
def report(results: Path) -> str:
    entries = json.loads(results.read_text()) if results.is_file() else []
    model = [e for e in entries if e["stage"] == "model"]
    model_rate = model[-1]["clips_per_s"] if model else None
    lines = ["| variant | stage | setting | S | clips/s | videos/s | of model-only | of decode limit |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    limits: dict[tuple[str, int], float] = {}
    for e in entries:
        if e["stage"] == "decode" and e.get("clips_per_s"):
            key = (e["variant"], e.get("num_sample", 1))
            limits[key] = max(limits.get(key, 0.0), e["clips_per_s"])
    for e in entries:
        if e["stage"] in ("generate", "prep") or e.get("rc"):  # a failed command measures nothing
            continue
        rate = e.get("clips_per_s")
        setting = ", ".join([f"{k} {e[k]}" for k in ("decoder", "processes", "threads", "workers", "batch")
                             if k in e] + ([e["how"]] if "how" in e else []))
        limit = limits.get((e.get("variant", ""), e.get("num_sample", 1)))
        vps = e.get("videos_per_s")
        reached = vps if e["stage"] == "embed" else rate
        lines.append(
            f"| {e.get('variant', '-')} | {e['stage']} | {setting or '-'} | {e.get('num_sample', '-')} | "
            f"{f'{rate:,.0f}' if rate else (e.get('error') or '-')} | {f'{vps:,.0f}' if vps else '-'} | "
            f"{f'{rate / model_rate:.0%}' if rate and model_rate else '-'} | "
            f"{f'{reached / limit:.0%}' if limit and reached else '-'} |")
    return "\n".join(lines)


STAGES = ["generate", "prep", "decode", "loader", "model", "pretrain", "embed", "report"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stages", nargs="+", choices=STAGES + ["all"])
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "videomae-pipeline"))
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "pipeline.json"))
    parser.add_argument("--variant", action="append", choices=["raw", *PREPARED], help="data (default: all)")
    parser.add_argument("--decoder", action="append", choices=("pyav", "nvdec"),
                        help="decoders of pretrain and embed runs")
    parser.add_argument("--count", type=int, default=512)
    parser.add_argument("--workers", type=int, default=None, help="decode processes / loader workers (CPUs - 1)")
    parser.add_argument("--batch", type=int, default=64, help="clips per step")
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps of the end-to-end runs")
    parser.add_argument("--sampling-rate", type=int, default=4)
    parser.add_argument("--num-sample", type=int, action="append", help="repeated augmentation S of pretrain runs")
    parser.add_argument("--repeat", type=int, default=1,
                        help="embed: each video this many times in one run, so start-up weighs as on a larger set")
    parser.add_argument("--quick", action="store_true", help="tiny data and model on the CPU (checks the script)")
    args = parser.parse_args()
    stages = STAGES if "all" in args.stages else args.stages
    variants = args.variant or ["raw", *PREPARED]
    s = Setup(args)
    results = Path(args.results)
    base = {"device": torch.cuda.get_device_name() if s.cuda else platform.processor() or "cpu",
            "cpus": os.cpu_count(), "torch": torch.__version__, "quick": args.quick}
    for stage in stages:
        if stage == "report":
            print(report(results))
            continue
        if stage in ("generate", "model"):
            outs = [globals()[f"stage_{stage}"](s)]
        elif stage == "prep":
            outs = [stage_prep(s, v) for v in variants if v in PREPARED]
        elif stage == "embed":
            outs = [o for v in variants if s.data(v).is_dir() for o in stage_embed(s, v, args.decoder)]
        elif stage == "pretrain":
            outs = [stage_pretrain(s, v, n, d) for v in variants for n in (args.num_sample or [1])
                    for d in (args.decoder or ["pyav"]) if s.data(v).is_dir()]
        else:
            outs = [o for v in variants if s.data(v).is_dir() for o in
                    (lambda r: r if isinstance(r, list) else [r])(globals()[f"stage_{stage}"](s, v))]
        for out in outs:
            record(results, {**base, **out})


if __name__ == "__main__":
    main()
