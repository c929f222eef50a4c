"""Two GPUs against one (DDP through torchrun): scaling, equal results, resume after a kill, evaluation.

Runs the `videomae` command as a user does, `python -m torch.distributed.run --nproc-per-node N
-m videomae TASK ...`, and reads what each run wrote (metrics.jsonl, model folders, metrics.json).
Stages (results appended to one JSON file; each fits one call on the machine):
  data      N generated H.264 files (benchmarks/pipeline_data.py), `videomae prep --frame-stride 4`
            of them (the fast data path), and a labelled list (label = index mod 8)
  scaling   pretraining (per-GPU batch 64) and fine-tuning (16) clips/s on 1 GPU given 16 CPU
            cores and on 2 GPUs given 16 each (taskset), same per-GPU batch; efficiency = 2-GPU
            clips/s / (2 x 1-GPU)
  equal     pretraining with one global batch for --steps steps: twice on 1 GPU (same seed: the
            spread of reruns) and once on 2 GPUs; loss curves (plotted when matplotlib is there)
            and final weights compared
  resume    the 2-GPU run again, killed (SIGKILL) after its middle checkpoint and resumed: its final
            weights against the unbroken 2-GPU run's, next to the reruns' spread
  evaluate  fp32 evaluation of the 1-GPU fine-tuned model on 1 and on 2 GPUs: top-1, videos counted
  report    a Markdown table of all of it

    python benchmarks/multi_gpu.py data scaling equal resume evaluate report --dir D --results R.json
    python benchmarks/multi_gpu.py all --quick     # CPU: gloo, 2 processes, a tiny model (checks the script)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import pipeline_data  # noqa: E402
from videomae.train.metrics import read_metrics  # noqa: E402

STAGES = ["data", "scaling", "equal", "resume", "evaluate", "report"]
TINY = dict(image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=2,
            num_attention_heads=2, intermediate_size=64, decoder_hidden_size=32, decoder_num_hidden_layers=1,
            decoder_num_attention_heads=2, decoder_intermediate_size=64)


class Setup:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args, self.quick = args, args.quick
        self.dir = Path(args.dir)
        self.results = Path(args.results)
        self.gpus = 0 if self.quick else torch.cuda.device_count()
        self.cores = os.cpu_count() or 2
        self.steps = 6 if self.quick else args.steps

    def common(self, task: str) -> list[str]:
        """Options every run of `task` shares: data, device, logging, and (training) model and precision."""
        data = self.dir / "prepared-s4" / ("" if task == "pretrain" else "labels.txt")
        out = ["--data", str(data), "--seed", "0", "--no-progress"]
        if self.quick:
            out += ["--device", "cpu", "--sampling-rate", "4", "--short-side", "40", "--num-workers", "0"]
        else:
            out += ["--device", "cuda", "--num-workers", str(max(1, min(self.cores, 32) // 2 - 1))]
        if task == "evaluate":
            return out + ["--precision", "fp32"]
        model = ["--model", "small", "--config-overrides", json.dumps(TINY)] if self.quick else ["--model", "base"]
        return out + model + ["--precision", "fp32" if self.quick else "bf16", "--log-every", "1", "--epochs", "1000"]

    def run(self, task: str, nproc: int, out: Path, extra: list[str], wait: bool = True,
            fresh: bool = True) -> subprocess.Popen | dict:
        """`videomae TASK` on `nproc` processes (GPUs), each GPU given 16 cores; `fresh`: in an
        emptied output folder (a resumed run keeps its own)."""
        if fresh:
            shutil.rmtree(out, ignore_errors=True)
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-port",
                   str(_free_port()), "-m", "videomae", task, *self.common(task), "--output-dir", str(out), *extra]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
               "OMP_NUM_THREADS": "1"}
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(nproc))
            if shutil.which("taskset"):  # 16 cores a GPU in both runs
                command = ["taskset", "-c", f"0-{min(self.cores, 16 * nproc) - 1}", *command]
        started = time.perf_counter()
        log = self.dir / f"{out.name}.log"  # a file, not a pipe: a run nobody reads must not block on it
        with log.open("a") as sink:
            proc = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # its own group: a kill reaches torchrun and its workers
        if not wait:
            return proc
        try:
            proc.wait(timeout=self.args.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        return {"rc": proc.returncode, "seconds": time.perf_counter() - started,
                "stderr_tail": log.read_text(errors="replace")[-600:]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def record(s: Setup, entry: dict) -> None:
    entry = {"time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "quick": s.quick, **entry}
    existing = json.loads(s.results.read_text()) if s.results.is_file() else []
    s.results.write_text(json.dumps(existing + [entry], indent=1))
    print(json.dumps(entry), flush=True)


def train_records(out: Path) -> list[dict]:
    return [r for r in read_metrics(out) if r["kind"] == "train"] if (out / "metrics.jsonl").is_file() else []


def weights_gap(a: Path, b: Path) -> float:
    """Largest absolute difference between two model folders' weights."""
    from safetensors.torch import load_file

    wa, wb = (load_file(str(next(p.glob("*.safetensors")))) for p in (a, b))
    return max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)


# --------------------------------------------------------------------------- stages
def stage_data(s: Setup) -> dict:
    from videomae.prep import prepare

    count, seconds = (12, 3.0) if s.quick else (s.args.count, 10.0)
    summary = pipeline_data.generate(s.dir / "raw", count=count, seconds=seconds, workers=s.cores)
    prepared = prepare(str(s.dir / "raw"), str(s.dir / "prepared-s4"), workers=s.cores, progress=False,
                       frame_stride=4)
    videos = sorted((s.dir / "prepared-s4").glob("*.mp4"))
    # next to prep.json, so training reads the frame stride for this list too
    (s.dir / "prepared-s4" / "labels.txt").write_text("".join(f"{p} {i % 8}\n" for i, p in enumerate(videos)))
    return {"stage": "data", "videos": summary["count"], "prepared": prepared.done, "failed": prepared.failed}


def stage_scaling(s: Setup) -> list[dict]:
    out = []
    for task, batch in (("pretrain", 64), ("finetune", 16)):
        batch = 2 if s.quick else batch
        for nproc in (1, 2):
            run_dir = s.dir / f"scaling-{task}-{nproc}"
            done = s.run(task, nproc, run_dir, ["--batch-size", str(batch * nproc), "--per-device-batch-size",
                                                str(batch), "--max-steps", str(s.steps if s.quick else 40),
                                                "--checkpoint-every", "100000"])
            tail = [r for r in train_records(run_dir) if r["step"] > (2 if s.quick else 8) and r.get("clips_per_s")]
            rate = float(np.mean([r["clips_per_s"] for r in tail])) if tail else None
            share = float(np.mean([r["data_share"] for r in tail if r.get("data_share") is not None])) if tail else None
            out.append({"stage": "scaling", "task": task, "gpus": nproc, "per_gpu_batch": batch,
                        "clips_per_s": rate, "data_share": share, **done})
        one, two = (e["clips_per_s"] for e in out[-2:])
        if one and two:
            out[-1]["efficiency"] = two / (2 * one)
    return out


def _equal_runs(s: Setup) -> dict[str, Path]:
    return {"one_a": s.dir / "equal-1-a", "one_b": s.dir / "equal-1-b", "two": s.dir / "equal-2"}


def _equal_args(s: Setup, nproc: int) -> list[str]:
    batch = 4 if s.quick else s.args.global_batch
    return ["--batch-size", str(batch), "--per-device-batch-size", str(batch // nproc), "--max-steps", str(s.steps),
            "--checkpoint-every", str(s.steps // 2), "--warmup-steps", str(max(1, s.steps // 10))]


def stage_equal(s: Setup) -> dict:
    runs = _equal_runs(s)
    done = {name: s.run("pretrain", 1 if name.startswith("one") else 2, path,
                        _equal_args(s, 1 if name.startswith("one") else 2)) for name, path in runs.items()}
    curves = {name: [r["loss"] for r in train_records(path)] for name, path in runs.items()}
    entry: dict = {"stage": "equal", "steps": s.steps, "runs": {k: {"rc": v["rc"], "seconds": v["seconds"],
                                                                     "stderr_tail": v["stderr_tail"][-300:]}
                                                                 for k, v in done.items()}}
    if all(len(c) == s.steps for c in curves.values()):
        a, b, two = (np.array(curves[k]) for k in ("one_a", "one_b", "two"))
        entry.update(rerun_spread_loss=float(np.abs(a - b).max()), two_vs_one_loss=float(np.abs(two - a).max()),
                     final_loss={k: float(v[-1]) for k, v in curves.items()},
                     rerun_spread_weights=weights_gap(runs["one_a"] / "model", runs["one_b"] / "model"),
                     two_vs_one_weights=weights_gap(runs["two"] / "model", runs["one_a"] / "model"))
        entry["plot"] = _plot(curves, s.dir / "equal-loss.png")
    return entry


def _plot(curves: dict[str, list[float]], path: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, curve in curves.items():
        ax.plot(range(1, len(curve) + 1), curve, label=name, linewidth=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)


def stage_resume(s: Setup) -> dict:
    runs = _equal_runs(s)
    killed = s.dir / "resume-2"
    proc = s.run("pretrain", 2, killed, _equal_args(s, 2), wait=False)
    middle = s.steps // 2
    deadline = time.monotonic() + s.args.timeout
    while time.monotonic() < deadline and proc.poll() is None:  # kill once the middle checkpoint is written
        steps = [int(p.name.split("-")[1]) for p in killed.glob("checkpoint-*") if p.name.split("-")[1].isdigit()]
        if steps and max(steps) >= middle:
            break
        time.sleep(0.2)
    finished_first = proc.poll() is not None
    if not finished_first:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = max((r["step"] for r in train_records(killed)), default=0)
    resumed = s.run("pretrain", 2, killed, [*_equal_args(s, 2), "--resume"], fresh=False)
    entry = {"stage": "resume", "killed_after_step": killed_at, "finished_before_the_kill": finished_first,
             "rc": resumed["rc"], "seconds": resumed["seconds"], "stderr_tail": resumed["stderr_tail"][-300:]}
    if resumed["rc"] == 0 and (runs["two"] / "model").is_dir():
        entry["resumed_vs_unbroken_weights"] = weights_gap(killed / "model", runs["two"] / "model")
        if (runs["one_b"] / "model").is_dir():
            entry["rerun_spread_weights"] = weights_gap(runs["one_a"] / "model", runs["one_b"] / "model")
    return entry


def stage_evaluate(s: Setup) -> dict:
    model = s.dir / "scaling-finetune-1" / "model"
    entry: dict = {"stage": "evaluate"}
    if not model.is_dir():
        return {**entry, "error": f"{model}: run the scaling stage first (its 1-GPU fine-tuned model)"}
    for nproc in (1, 2):
        out = s.dir / f"evaluate-{nproc}"
        done = s.run("evaluate", nproc, out, ["--model", str(model), "--eval-num-clips", "2", "--eval-num-crops", "1"])
        metrics = json.loads((out / "metrics.json").read_text()) if (out / "metrics.json").is_file() else {}
        entry[f"gpus_{nproc}"] = {"top1": metrics.get("top1"), "num_videos": metrics.get("num_videos"),
                                  "rc": done["rc"], "stderr_tail": done["stderr_tail"][-300:]}
    one, two = entry["gpus_1"], entry["gpus_2"]
    entry["same_top1"] = one["top1"] is not None and one["top1"] == two["top1"]
    entry["same_count"] = one["num_videos"] is not None and one["num_videos"] == two["num_videos"]
    return entry


def report(s: Setup) -> str:
    entries = json.loads(s.results.read_text()) if s.results.is_file() else []
    lines = ["| stage | what | 1 GPU | 2 GPUs | 2 vs 1 |", "| --- | --- | --- | --- | --- |"]
    scaling = [e for e in entries if e["stage"] == "scaling"]
    for task in ("pretrain", "finetune"):
        rows = {e["gpus"]: e for e in scaling if e["task"] == task}
        if 1 in rows and 2 in rows and rows[1]["clips_per_s"] and rows[2]["clips_per_s"]:
            lines.append(f"| scaling | {task} clips/s, per-GPU batch {rows[1]['per_gpu_batch']} | "
                         f"{rows[1]['clips_per_s']:,.0f} | {rows[2]['clips_per_s']:,.0f} | "
                         f"{rows[2].get('efficiency', float('nan')):.0%} efficiency |")
    for e in (x for x in entries if x["stage"] == "equal" and "two_vs_one_loss" in x):
        lines.append(f"| equal | largest loss gap over {e['steps']} steps (reruns on 1 GPU: "
                     f"{e['rerun_spread_loss']:.2e}) | - | {e['two_vs_one_loss']:.2e} | weights "
                     f"{e['two_vs_one_weights']:.2e} (reruns {e['rerun_spread_weights']:.2e}) |")
    for e in (x for x in entries if x["stage"] == "resume" and "resumed_vs_unbroken_weights" in x):
        lines.append(f"| resume | killed after step {e['killed_after_step']}, resumed: weights against the "
                     f"unbroken run | - | {e['resumed_vs_unbroken_weights']:.2e} | reruns "
                     f"{e.get('rerun_spread_weights', float('nan')):.2e} |")
    for e in (x for x in entries if x["stage"] == "evaluate" and "gpus_1" in x):
        one, two = e["gpus_1"], e["gpus_2"]
        lines.append(f"| evaluate | top-1, videos (fp32) | {one['top1']:.4f}, {one['num_videos']} | "
                     f"{two['top1']:.4f}, {two['num_videos']} | "
                     f"{'same' if e['same_top1'] and e['same_count'] else 'DIFFERENT'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stages", nargs="+", choices=[*STAGES, "all"])
    parser.add_argument("--dir", default="/tmp/videomae-multi-gpu")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "multi-gpu.json"))
    parser.add_argument("--count", type=int, default=256, help="videos to generate")
    parser.add_argument("--steps", type=int, default=200, help="steps of the equal-results runs")
    parser.add_argument("--global-batch", type=int, default=32, help="global batch of the equal-results runs")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds a run may take")
    parser.add_argument("--quick", action="store_true", help="CPU, gloo, a tiny model and data")
    args = parser.parse_args(argv)
    s = Setup(args)
    s.dir.mkdir(parents=True, exist_ok=True)
    if not s.quick and s.gpus < 2:
        raise SystemExit(f"needs 2 CUDA devices, found {s.gpus} (use --quick for the CPU check)")
    record(s, {"stage": "start", "device": torch.cuda.get_device_name() if s.gpus else "cpu", "gpus": s.gpus,
               "cpus": s.cores, "torch": torch.__version__, "python": platform.python_version(),
               "nccl": ".".join(map(str, torch.cuda.nccl.version())) if s.gpus else None})
    stages = STAGES if "all" in args.stages else [x for x in STAGES if x in args.stages]
    handlers = {"data": stage_data, "scaling": stage_scaling, "equal": stage_equal, "resume": stage_resume,
                "evaluate": stage_evaluate}
    for stage in stages:
        if stage == "report":
            print(report(s))
            continue
        result = handlers[stage](s)
        for entry in result if isinstance(result, list) else [result]:
            record(s, entry)


if __name__ == "__main__":
    main()
