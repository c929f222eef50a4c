"""GPU throughput of VideoMAE-B (16x224): ours against transformers, same weights, one process.

Checks first that both compute the same function (bf16 tolerance), then times with CUDA
events (warm-up, median of repeats): inference at batch 1/16/64, a pretraining step with 90%
tube masking (batch 32, and ours at larger batches), a fine-tuning step (batch 16). Prints
clips/s, achieved TFLOP/s (model FLOPs counted analytically), the fraction of the measured
bf16 matrix peak and peak memory; then, for each workload, the best of transformers against the
best of ours ("ours best / transformers best").

With --compile both libraries' models are also timed under torch.compile (modes default and
reduce-overhead, i.e. CUDA graphs), so "best" is eager or compiled, whichever is faster, on each
side. Both train with fused AdamW (a torch option either library's user can pick). Each
pretraining step draws its mask on the CPU, as the data loader does (`MaskGenerator`, the
trainer's collate step): ours takes it there, as `videomae pretrain` does; transformers' is
copied to the GPU first, as its model needs.

--fp8 adds FP8 rows (inference and training). Our bf16 inference rows run fc1's GELU in cuBLASLt's
epilogue (`videomae.fused`), as the model does; --no-fused-gelu adds rows without it.

    python benchmarks/gpu.py [--quick] [--compile] [--json OUT.json]
    python benchmarks/gpu.py --device cpu --tiny [--compile]   # every case on a tiny model, seconds
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import videomae  # noqa: E402
from videomae import checkpoint as ckpt  # noqa: E402
from videomae import sdpa  # noqa: E402
from videomae.data.collate import MaskGenerator  # noqa: E402

# VideoMAE-B 16x224 is the default; --tiny runs every case on this model (a smoke test).
TINY = dict(image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=2,
            num_attention_heads=2, intermediate_size=64, decoder_hidden_size=32, decoder_num_hidden_layers=1,
            decoder_num_attention_heads=2, decoder_intermediate_size=64)
WORKLOADS = ("inference", "finetune", "pretrain")


class Bench:
    """Where and how big: the device, the model fields, the batch sizes and the repeats."""

    def __init__(self, device: str, tiny: bool, iters: int, compile_backend: str) -> None:
        self.device = torch.device(device)
        self.fields = dict(TINY) if tiny else {}
        self.tiny = tiny
        self.iters = iters
        self.warmup = 1 if tiny else 3
        self.backend = compile_backend
        self.cuda = self.device.type == "cuda"

    def clip(self, batch: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        cfg = videomae.VideoMAEConfig(**self.fields)
        return torch.randn(batch, cfg.num_frames, 3, cfg.image_size, cfg.image_size, device=self.device, dtype=dtype)

    def batch(self, batch: int) -> int:
        return min(batch, 2) if self.tiny else batch

    def compile(self, fn, mode: str):
        """torch.compile `fn` afresh: each case compiles for its own shapes (a second batch size
        on the same code would recompile it with a dynamic batch) and its own mode. Another
        backend is a smoke test of the compiled paths: no modes, and its caches are kept."""
        if self.backend != "inductor":
            return torch.compile(fn, backend=self.backend)
        torch.compiler.reset()
        return torch.compile(fn, mode=mode)

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()


# --------------------------------------------------------------------------- timing
def bench(fn, b: Bench, warmup: int | None = None, iters: int | None = None) -> float:
    """Median milliseconds of `fn` over `iters` runs: CUDA events on a GPU, the clock elsewhere."""
    for _ in range(b.warmup if warmup is None else warmup):
        fn()
    b.sync()
    times = []
    for _ in range(b.iters if iters is None else iters):
        if b.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def matmul_peak(b: Bench) -> float:
    """Measured bf16 matrix-product TFLOP/s (8192^3 on a GPU, 512^3 on a CPU; random data)."""
    n = 8192 if b.cuda else 512
    x = torch.randn(n, n, device=b.device, dtype=torch.bfloat16)
    y = torch.randn(n, n, device=b.device, dtype=torch.bfloat16)
    ms = bench(lambda: x @ y, b, warmup=3, iters=10)
    return 2 * n**3 / (ms * 1e-3) / 1e12


# --------------------------------------------------------------------------- FLOPs
def encoder_flops(tokens: int, dim: int, mlp: int, layers: int) -> float:
    """Forward matmul FLOPs of `layers` blocks on `tokens` tokens (per clip)."""
    per_layer = 2 * tokens * (4 * dim * dim + 2 * dim * mlp) + 4 * tokens * tokens * dim
    return layers * per_layer


def clip_flops(config: videomae.VideoMAEConfig, kind: str, mask_ratio: float = 0.9) -> float:
    """Model FLOPs per clip: forward for inference, 3x forward for a training step."""
    n = config.num_patches
    embed = 2 * config.patch_dim * config.hidden_size
    if kind == "pretrain":
        t, h, w = config.grid_size
        visible = n - t * int(mask_ratio * h * w)
        masked = n - visible
        fwd = visible * embed + encoder_flops(visible, config.hidden_size, config.intermediate_size,
                                              config.num_hidden_layers)
        fwd += 2 * visible * config.hidden_size * config.decoder_hidden_size
        fwd += encoder_flops(n, config.decoder_hidden_size, config.decoder_intermediate_size,
                             config.decoder_num_hidden_layers)
        fwd += 2 * masked * config.decoder_hidden_size * config.patch_dim
        return 3 * fwd
    fwd = n * embed + encoder_flops(n, config.hidden_size, config.intermediate_size, config.num_hidden_layers)
    fwd += 2 * config.hidden_size * config.num_labels
    return fwd if kind == "inference" else 3 * fwd


# --------------------------------------------------------------------------- models
def build_pair(name: str, b: Bench, **fields):
    """transformers' model and ours with the same (random) weights, on the device."""
    import transformers

    fields = {**b.fields, **fields}
    hf_config = transformers.VideoMAEConfig(**fields, attn_implementation="sdpa")
    torch.manual_seed(0)
    theirs = getattr(transformers, name)(hf_config)
    state, _ = ckpt.to_internal(theirs.state_dict())
    ours_config = videomae.VideoMAEConfig(**fields)
    ours = getattr(videomae, name)(ours_config)
    info = ours.load_internal_state_dict(state)
    assert not info["missing_keys"] and not info["mismatched_keys"], info
    return theirs.to(b.device), ours.to(b.device), ours_config


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def check_agreement(report: dict, b: Bench) -> None:
    theirs, ours, cfg = build_pair("VideoMAEForVideoClassification", b, num_labels=400)
    x = b.clip(4)
    with torch.no_grad(), torch.autocast(b.device.type, torch.bfloat16):
        report["agree_classification_logits"] = rel(ours(x).logits, theirs(pixel_values=x).logits)
    theirs, ours, cfg = build_pair("VideoMAEForPreTraining", b, use_mean_pooling=False)
    mask = videomae.tube_mask(cfg.grid_size, 0.9, 4, device=b.device)
    with torch.no_grad(), torch.autocast(b.device.type, torch.bfloat16):
        out, ref = ours(x, mask), theirs(pixel_values=x, bool_masked_pos=mask)
    report["agree_pretraining_logits"] = rel(out.logits, ref.logits)
    report["agree_pretraining_loss"] = abs(float(out.loss) - float(ref.loss)) / abs(float(ref.loss))
    for key in ("agree_classification_logits", "agree_pretraining_logits", "agree_pretraining_loss"):
        assert report[key] < 2e-2, f"{key}: {report[key]:.3e} exceeds bf16 tolerance"
    del theirs, ours


# --------------------------------------------------------------------------- workloads
def inference_case(model, batch: int, hf: bool, b: Bench, mode: str | None = None):
    """Classification forward; `mode` compiles the model (torch.compile mode)."""
    x = b.clip(batch, torch.bfloat16)
    net = b.compile(model, mode) if mode else model

    def run():
        if mode == "reduce-overhead" and b.cuda:
            torch.compiler.cudagraph_mark_step_begin()
        with torch.inference_mode():
            return net(pixel_values=x) if hf else net(x)
    return run


def train_case(model, batch: int, kind: str, hf: bool, config: videomae.VideoMAEConfig, b: Bench,
               mode: str | None = None):
    """One optimizer step (bf16 autocast, fused AdamW on a GPU). A pretraining step draws its
    mask on the CPU first, as the data loader's collate step does: ours takes it there (the
    model turns it into token indices; compiled, only `forward_indexed` is, as `videomae
    pretrain --compile` does); transformers' goes to the GPU. `mode` compiles (torch.compile mode)."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05, fused=b.cuda or None)
    x = b.clip(batch)
    labels = torch.randint(0, config.num_labels, (batch,), device=b.device)
    masks = MaskGenerator(config.grid_size, 0.9, "tube")
    generator = torch.Generator().manual_seed(0)
    if kind == "finetune":
        net = b.compile(model, mode) if mode else model
        forward = (lambda: net(pixel_values=x, labels=labels)) if hf else (lambda: net(x, labels=labels))
    elif hf:
        net = b.compile(model, mode) if mode else model
        forward = lambda: net(pixel_values=x, bool_masked_pos=masks(batch, generator).to(b.device,  # noqa: E731
                                                                                       non_blocking=True))
    else:
        if mode:
            model.forward_indexed = b.compile(type(model).forward_indexed.__get__(model), mode)
        elif "forward_indexed" in vars(model):
            del model.forward_indexed  # eager again after a compiled case
        forward = lambda: model(x, masks(batch, generator))  # noqa: E731

    def run():
        if mode == "reduce-overhead" and b.cuda:
            torch.compiler.cudagraph_mark_step_begin()
        with torch.autocast(b.device.type, torch.bfloat16):
            loss = forward().loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return run


def measure(label: str, make, clips: int, flops: float, peak: float, rows: list, b: Bench,
            iters: int | None = None) -> dict | None:
    """Time the case `make()` builds; a case that runs out of memory, or fails to compile, is
    reported and skipped."""
    if b.cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    try:
        ms = bench(make(), b, iters=iters)
    except torch.OutOfMemoryError:
        if b.cuda:
            torch.cuda.empty_cache()
        print(f"{label}: out of memory", flush=True)
        return None
    except Exception as err:  # noqa: BLE001 (a compiler failure on one side must not end the comparison)
        if "compiled" not in label:
            raise
        print(f"{label}: failed: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}", flush=True)
        return None
    row = {"case": label, "ms": ms, "clips_per_s": clips / (ms / 1e3),
           "tflops": flops * clips / (ms / 1e3) / 1e12,
           "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if b.cuda else None}
    row["frac_peak"] = row["tflops"] / peak
    rows.append(row)
    mem = f"{row['peak_mem_gib']:6.1f} GiB" if b.cuda else ""
    print(f"{label:<52} {row['ms']:8.2f} ms {row['clips_per_s']:8.1f} clips/s {row['tflops']:7.1f} TFLOP/s "
          f"{row['frac_peak']:6.1%} {mem}", flush=True)
    return row


def profile_fn(cases: dict, title: str) -> None:
    """Top CUDA kernels of two calls of each case, by their own time (a kernel's time is not
    counted again in the op that launched it)."""
    from torch.profiler import ProfilerActivity, profile

    cuda = torch.cuda.is_available()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for label, fn in cases.items():
        for _ in range(3):
            fn()
        sync()
        with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
            for _ in range(2):
                fn()
            sync()
        print(f"\n=== {title} {label} (2 calls) ===")
        print(prof.key_averages().table(sort_by=f"self_{'cuda' if cuda else 'cpu'}_time_total", row_limit=25,
                                        max_name_column_width=70))


def run_inference(args, b: Bench, modes: list[str], peak: float, rows: list) -> list[str]:
    """Classification forward, bf16 weights end to end. Returns the workloads compared (b16, b64)."""
    theirs, ours, cfg = build_pair("VideoMAEForVideoClassification", b, num_labels=400)
    theirs, ours = theirs.to(torch.bfloat16).eval(), ours.to(torch.bfloat16).eval()
    flops = clip_flops(cfg, "inference")
    if args.profile:
        profile_fn({"transformers": inference_case(theirs, 16, True, b), "ours": inference_case(ours, 16, False, b)},
                   "inference b16")
    for batch in (1, 16, 64):
        n = b.batch(batch)
        for who, model, hf in (("transformers", theirs, True), ("ours", ours, False)):
            measure(f"inference b{batch} {who}", partial(inference_case, model, n, hf, b), n, flops, peak, rows, b)
    for mode in modes:
        for batch in (16, 64):
            n = b.batch(batch)
            for who, model, hf in (("transformers", theirs, True), ("ours", ours, False)):
                measure(f"inference b{batch} {who} compiled {mode}", partial(inference_case, model, n, hf, b, mode),
                        n, flops, peak, rows, b)
    if args.fp8:  # FP8 linear layers (videomae.fp8), bf16 elsewhere; compared with transformers' best bf16
        import copy

        from videomae.fp8 import quantize_float8

        fp8 = quantize_float8(copy.deepcopy(ours))
        for mode in [None, *modes]:
            suffix = f" compiled {mode}" if mode else ""
            for batch in (16, 64):
                n = b.batch(batch)
                measure(f"inference b{batch} fp8 ours{suffix}", partial(inference_case, fp8, n, False, b, mode), n,
                        flops, peak, rows, b)
        del fp8
    if args.no_fused_gelu:  # what fc1's GELU in the product's epilogue buys (kept out of "ours best")
        import copy

        from videomae.modeling import Mlp

        unfused = copy.deepcopy(ours)
        for module in unfused.modules():
            if isinstance(module, Mlp):
                module.explicit = True
        for mode in [None, *modes]:
            suffix = f" compiled {mode}" if mode else ""
            for batch in (16, 64):
                n = b.batch(batch)
                measure(f"inference b{batch} unfused-gelu ours{suffix}",
                        partial(inference_case, unfused, n, False, b, mode), n, flops, peak, rows, b)
        del unfused
    return ["inference b16", "inference b64"]


def profile_training(theirs, ours, n: int, kind: str, cfg, b: Bench, modes: list[str]) -> None:
    """Both training steps' kernels, eager and (with --compile) compiled in the first mode, where
    the elementwise work is fused and what is left beside the products shows."""
    for mode in [None, *modes[:1]]:
        profile_fn({"transformers": train_case(theirs, n, kind, True, cfg, b, mode),
                    "ours": train_case(ours, n, kind, False, cfg, b, mode)},
                   f"{kind} b{n}" + (f" compiled {mode}" if mode else ""))


def compare_training(workload: str, theirs, ours, n: int, kind: str, cfg, b: Bench, modes: list[str],
                     flops: float, peak: float, rows: list) -> None:
    """Both libraries' training step, eager and in the first two compile modes."""
    for mode in [None, *modes[:2]]:
        suffix = f" compiled {mode}" if mode else ""
        for who, model, hf in (("transformers", theirs, True), ("ours", ours, False)):
            measure(f"{workload} {who}{suffix}", partial(train_case, model, n, kind, hf, cfg, b, mode), n,
                    flops, peak, rows, b)


def run_finetune(args, b: Bench, modes: list[str], peak: float, rows: list) -> list[str]:
    """Fine-tuning step, batch 16, bf16 autocast, AdamW."""
    theirs, ours, cfg = build_pair("VideoMAEForVideoClassification", b, num_labels=400)
    theirs.train(), ours.train()
    flops = clip_flops(cfg, "finetune")
    n = b.batch(16)
    if args.profile:
        profile_training(theirs, ours, n, "finetune", cfg, b, modes)
    compare_training("finetune b16", theirs, ours, n, "finetune", cfg, b, modes, flops, peak, rows)
    if args.fp8:
        fp8_training(ours, 16, n, "finetune", cfg, b, modes, flops, peak, rows)
    return ["finetune b16"]


def run_pretrain(args, b: Bench, modes: list[str], peak: float, rows: list) -> list[str]:
    """Pretraining step with 90% tube masking, bf16 autocast, AdamW."""
    theirs, ours, cfg = build_pair("VideoMAEForPreTraining", b, use_mean_pooling=False)
    theirs.train(), ours.train()
    flops = clip_flops(cfg, "pretrain")
    n = b.batch(32)
    if args.profile:
        profile_training(theirs, ours, n, "pretrain", cfg, b, modes)
    compare_training("pretrain b32", theirs, ours, n, "pretrain", cfg, b, modes, flops, peak, rows)
    # ours alone at larger batches: how far the step scales before memory runs out
    for batch in (64, 128, 256):
        m = b.batch(batch)
        if measure(f"pretrain b{batch} ours", partial(train_case, ours, m, "pretrain", False, cfg, b), m, flops, peak,
                   rows, b, iters=max(2, b.iters // 3)) is None:
            break
    if modes:
        m = b.batch(128)
        measure("pretrain b128 ours compiled default", partial(train_case, ours, m, "pretrain", False, cfg, b,
                                                               "default"), m, flops, peak, rows, b,
                iters=max(2, b.iters // 3))
    if "forward_indexed" in vars(ours):
        del ours.forward_indexed
    if args.fp8:  # the bars: batch 32 (the table's) and 64, against ours compiled in bf16
        m = b.batch(64)
        measure("pretrain b64 ours compiled default", partial(train_case, ours, m, "pretrain", False, cfg, b,
                                                              "default"), m, flops, peak, rows, b)
        for batch in (32, 64):
            fp8_training(ours, batch, b.batch(batch), "pretrain", cfg, b, modes, flops, peak, rows)
        if "forward_indexed" in vars(ours):
            del ours.forward_indexed
    return ["pretrain b32"]


def fp8_training(model, label_batch: int, batch: int, kind: str, cfg, b: Bench, modes: list[str], flops: float,
                 peak: float, rows: list) -> None:
    """The training step with torchao's FP8 linear layers (row-wise scales), compiled as torchao
    needs; a copy of `model`, so the bf16 rows are untouched."""
    import copy

    from videomae.fp8 import convert_for_training

    fp8 = convert_for_training(copy.deepcopy(model))
    for mode in modes[:2] or ["default"]:
        measure(f"{kind} b{label_batch} fp8 ours compiled {mode}", partial(train_case, fp8, batch, kind, False, cfg, b,
                                                                         mode),
                batch, flops, peak, rows, b)
    del fp8


def best_of_each(rows: list[dict], workloads: list[str]) -> list[dict]:
    """For each workload (a case prefix such as 'pretrain b32'), the fastest transformers case
    and the fastest of ours, eager or compiled, and their ratio."""
    out = []
    for workload in workloads:
        best = {}
        for who in ("transformers", "ours"):
            cases = [r for r in rows if r["case"] == f"{workload} {who}" or r["case"].startswith(f"{workload} {who} ")]
            if cases:
                best[who] = max(cases, key=lambda r: r["clips_per_s"])
        if len(best) == 2:
            out.append({"workload": workload, "transformers_best": best["transformers"]["case"],
                        "transformers_clips_per_s": best["transformers"]["clips_per_s"],
                        "ours_best": best["ours"]["case"], "ours_clips_per_s": best["ours"]["clips_per_s"],
                        "ratio": best["ours"]["clips_per_s"] / best["transformers"]["clips_per_s"]})
    return out


def fp8_ratios(rows: list[dict]) -> list[dict]:
    """Each FP8 row against the best bf16 row of ours and of transformers for its workload."""
    out = []
    for r in rows:
        if " fp8 " not in r["case"]:
            continue
        workload = r["case"].split(" fp8 ")[0]
        best = {}
        for who in ("transformers", "ours"):
            cases = [x for x in rows if x["case"].startswith(f"{workload} {who}")]
            if cases:
                best[who] = max(x["clips_per_s"] for x in cases)
        entry = {"case": r["case"], "clips_per_s": r["clips_per_s"],
                 "vs_ours_bf16_best": r["clips_per_s"] / best["ours"] if "ours" in best else float("nan")}
        if "transformers" in best:
            entry["vs_transformers_best"] = r["clips_per_s"] / best["transformers"]
        out.append(entry)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--compile", action="store_true",
                        help="also time both libraries' models under torch.compile")
    parser.add_argument("--json", type=Path, help="write all rows here")
    parser.add_argument("--profile", action="store_true", help="print the top CUDA kernels of each workload")
    parser.add_argument("--only", choices=WORKLOADS, action="append", help="run only these workloads (repeatable)")
    parser.add_argument("--autotune", action="store_true", help="also time torch.compile mode='max-autotune'")
    parser.add_argument("--no-fused-gelu", action="store_true",
                        help="also time our inference with the GELU as its own pass (what the fusion buys)")
    parser.add_argument("--fp8", action="store_true", help="also time FP8 linear layers: inference (videomae.fp8) "
                        "and training (torchao), against the bf16 rows")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (with --tiny: a smoke test)")
    parser.add_argument("--tiny", action="store_true", help="a tiny model and batches of at most 2: checks that "
                        "every case runs, in seconds; its numbers mean nothing")
    parser.add_argument("--compile-backend", default="inductor",
                        help="torch.compile backend (default inductor; 'eager' checks the compiled paths quickly)")
    args = parser.parse_args(argv)
    import transformers

    b = Bench(args.device, args.tiny, 2 if args.tiny else 10 if args.quick else 30, args.compile_backend)
    if b.cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    report: dict = {"device": torch.cuda.get_device_name(b.device) if b.cuda else platform.processor() or "cpu",
                    "torch": torch.__version__, "transformers": transformers.__version__,
                    "python": platform.python_version(), "tiny": args.tiny, "compile": args.compile}
    peak = matmul_peak(b)
    report["matmul_peak_tflops"] = peak
    print(json.dumps(report), flush=True)
    check_agreement(report, b)
    print(f"agreement (bf16): {report}", flush=True)
    rows: list = []

    wanted = [w for w in WORKLOADS if w in (args.only or WORKLOADS)]
    modes = ["default", "reduce-overhead"] + (["max-autotune"] if args.autotune else []) if args.compile else []
    runners = {"inference": run_inference, "finetune": run_finetune, "pretrain": run_pretrain}
    compared = []
    report["rows"] = rows
    for w in wanted:  # the JSON is rewritten after each workload: a run cut short keeps what it measured
        compared += runners[w](args, b, modes, peak, rows)
        report["best"] = best_of_each(rows, compared)
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))
    report["best"] = best_of_each(rows, compared)
    report["fp8"] = fp8_ratios(rows)
    report["attention"] = sdpa.chosen()  # which fused kernel each eager shape ran
    print(f"attention kernels: {report['attention']}")
    for r in report["fp8"]:
        print(f"  fp8: {r['case']:<44} {r['clips_per_s']:8.1f} clips/s, {r['vs_ours_bf16_best']:.2f}x ours bf16 best, "
              f"{r['vs_transformers_best']:.2f}x transformers best" if r.get("vs_transformers_best") else
              f"  fp8: {r['case']:<44} {r['clips_per_s']:8.1f} clips/s, {r['vs_ours_bf16_best']:.2f}x ours bf16 best")
    print("\nbest of each (eager or compiled), clips/s:")
    print(f"  {'workload':<14} {'transformers best':<44} {'ours best':<36} ours best / transformers best")
    for r in report["best"]:
        print(f"  {r['workload']:<14} {r['transformers_clips_per_s']:8.1f} ({r['transformers_best']:<32}) "
              f"{r['ours_clips_per_s']:8.1f} ({r['ours_best']:<24}) {r['ratio']:5.2f}x")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
