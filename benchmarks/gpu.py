"""GPU throughput of VideoMAE-B (16x224): ours against transformers, same weights, one process.

Checks first that both compute the same function (bf16 tolerance), then times with CUDA
events (warm-up, median of repeats): inference at batch 1/16/64, a pretraining step with 90%
tube masking (batch 32 and the largest that fits), a fine-tuning step (batch 16). Prints
clips/s, achieved TFLOP/s (model FLOPs counted analytically), the fraction of the measured
bf16 matrix peak, peak memory, and ours/transformers ratios.

    python benchmarks/gpu.py [--quick] [--compile] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import videomae  # noqa: E402
from videomae import checkpoint as ckpt  # noqa: E402


# --------------------------------------------------------------------------- timing
def bench(fn, warmup: int = 5, iters: int = 20) -> float:
    """Median milliseconds of `fn` over `iters` runs, timed with CUDA events."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def matmul_peak() -> float:
    """Measured bf16 matrix-product TFLOP/s (8192^3, random data)."""
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    ms = bench(lambda: a @ b, warmup=3, iters=10)
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
def build_pair(name: str, **fields):
    """transformers' model and ours with the same (random) weights, on the GPU."""
    import transformers

    hf_config = transformers.VideoMAEConfig(**fields, attn_implementation="sdpa")
    torch.manual_seed(0)
    theirs = getattr(transformers, name)(hf_config)
    state, _ = ckpt.to_internal(theirs.state_dict())
    ours_config = videomae.VideoMAEConfig(**fields)
    ours = getattr(videomae, name)(ours_config)
    info = ours.load_internal_state_dict(state)
    assert not info["missing_keys"] and not info["mismatched_keys"], info
    return theirs.cuda(), ours.cuda(), ours_config


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def check_agreement(report: dict) -> None:
    theirs, ours, cfg = build_pair("VideoMAEForVideoClassification", num_labels=400)
    x = torch.randn(4, 16, 3, 224, 224, device="cuda")
    with torch.no_grad(), torch.autocast("cuda", torch.bfloat16):
        report["agree_classification_logits"] = rel(ours(x).logits, theirs(pixel_values=x).logits)
    theirs, ours, cfg = build_pair("VideoMAEForPreTraining", use_mean_pooling=False)
    mask = videomae.tube_mask(cfg.grid_size, 0.9, 4, device="cuda")
    with torch.no_grad(), torch.autocast("cuda", torch.bfloat16):
        a, b = ours(x, mask), theirs(pixel_values=x, bool_masked_pos=mask)
    report["agree_pretraining_logits"] = rel(a.logits, b.logits)
    report["agree_pretraining_loss"] = abs(float(a.loss) - float(b.loss)) / abs(float(b.loss))
    for key in ("agree_classification_logits", "agree_pretraining_logits", "agree_pretraining_loss"):
        assert report[key] < 2e-2, f"{key}: {report[key]:.3e} exceeds bf16 tolerance"
    del theirs, ours


# --------------------------------------------------------------------------- workloads
def inference_case(model, batch: int, hf: bool):
    x = torch.randn(batch, 16, 3, 224, 224, device="cuda", dtype=torch.bfloat16)

    def run():
        with torch.inference_mode():
            return model(pixel_values=x) if hf else model(x)
    return run


def train_case(model, batch: int, kind: str, hf: bool, fused: bool, config: videomae.VideoMAEConfig,
               compiled_mode: str | None = None):
    """One optimizer step. Ours takes the mask on the CPU, as the data loader makes it;
    transformers gets it on the GPU. `compiled_mode` compiles ours with torch.compile."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05, fused=fused or None)
    x = torch.randn(batch, 16, 3, 224, 224, device="cuda")
    masks = [videomae.tube_mask(config.grid_size, 0.9, batch, device="cuda" if hf else None) for _ in range(4)]
    indices = [tuple(i.cuda() for i in videomae.masking.split_indices(m, int(m[0].sum()))) for m in masks]
    labels = torch.randint(0, config.num_labels, (batch,), device="cuda")
    if hf:
        forward = (lambda i: model(pixel_values=x, bool_masked_pos=masks[i])) if kind == "pretrain" else \
            (lambda i: model(pixel_values=x, labels=labels))
    elif compiled_mode is None:
        forward = (lambda i: model(x, masks[i])) if kind == "pretrain" else (lambda i: model(x, labels=labels))
    elif kind == "pretrain":
        core = torch.compile(model.forward_indexed, mode=compiled_mode)
        forward = lambda i: core(x, *indices[i])  # noqa: E731
    else:
        core = torch.compile(model, mode=compiled_mode)
        forward = lambda i: core(x, labels=labels)  # noqa: E731
    step = [0]

    def run():
        if compiled_mode == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()
        i = step[0] % len(masks)
        step[0] += 1
        with torch.autocast("cuda", torch.bfloat16):
            loss = forward(i).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return run


def measure(label: str, fn, clips: int, flops: float, peak: float, rows: list, iters: int) -> dict | None:
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    try:
        ms = bench(fn, warmup=3, iters=iters)
    except torch.OutOfMemoryError:
        torch.cuda.empty_cache()
        print(f"{label}: out of memory", flush=True)
        return None
    row = {"case": label, "ms": ms, "clips_per_s": clips / (ms / 1e3),
           "tflops": flops * clips / (ms / 1e3) / 1e12,
           "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30}
    row["frac_peak"] = row["tflops"] / peak
    rows.append(row)
    print(f"{label:<48} {row['ms']:8.2f} ms {row['clips_per_s']:8.1f} clips/s {row['tflops']:7.1f} TFLOP/s "
          f"{row['frac_peak']:6.1%} {row['peak_mem_gib']:6.1f} GiB", flush=True)
    return row


def profile_fn(cases: dict, title: str) -> None:
    """Top CUDA kernels of two calls of each case."""
    from torch.profiler import ProfilerActivity, profile

    for label, fn in cases.items():
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
            for _ in range(2):
                fn()
            torch.cuda.synchronize()
        print(f"\n=== {title} {label} (2 calls) ===")
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=20, max_name_column_width=70))


def run_inference(args, modes: list[str], peak: float, rows: list, iters: int) -> None:
    """Classification forward, bf16 weights end to end."""
    theirs, ours, cfg = build_pair("VideoMAEForVideoClassification", num_labels=400)
    theirs, ours = theirs.to(torch.bfloat16).eval(), ours.to(torch.bfloat16).eval()
    flops = clip_flops(cfg, "inference")
    if args.profile:
        profile_fn({"transformers": inference_case(theirs, 16, True), "ours": inference_case(ours, 16, False)},
                   "inference b16")
    for batch in (1, 16, 64):
        measure(f"inference b{batch} transformers", inference_case(theirs, batch, True), batch, flops, peak, rows,
                iters)
        measure(f"inference b{batch} ours", inference_case(ours, batch, False), batch, flops, peak, rows, iters)
    for mode in modes if args.compile else []:
        compiled = torch.compile(ours, mode=mode)
        for batch in (16, 64):
            measure(f"inference b{batch} ours compiled {mode}", inference_case(compiled, batch, False), batch,
                    flops, peak, rows, iters)


def run_finetune(args, modes: list[str], peak: float, rows: list, iters: int) -> None:
    """Fine-tuning step, batch 16, bf16 autocast, AdamW."""
    theirs, ours, cfg = build_pair("VideoMAEForVideoClassification", num_labels=400)
    theirs.train(), ours.train()
    flops = clip_flops(cfg, "finetune")
    if args.profile:
        profile_fn({"transformers": train_case(theirs, 16, "finetune", True, False, cfg),
                    "ours": train_case(ours, 16, "finetune", False, True, cfg)}, "finetune b16")
    measure("finetune b16 transformers (AdamW foreach)", train_case(theirs, 16, "finetune", True, False, cfg), 16,
            flops, peak, rows, iters)
    measure("finetune b16 ours (AdamW foreach)", train_case(ours, 16, "finetune", False, False, cfg), 16, flops,
            peak, rows, iters)
    measure("finetune b16 ours (AdamW fused)", train_case(ours, 16, "finetune", False, True, cfg), 16, flops, peak,
            rows, iters)
    for mode in modes[:2] if args.compile else []:
        measure(f"finetune b16 ours compiled {mode}", train_case(ours, 16, "finetune", False, True, cfg, mode),
                16, flops, peak, rows, iters)


def run_pretrain(args, modes: list[str], peak: float, rows: list, iters: int) -> None:
    """Pretraining step with 90% tube masking, bf16 autocast, AdamW."""
    theirs, ours, cfg = build_pair("VideoMAEForPreTraining", use_mean_pooling=False)
    theirs.train(), ours.train()
    flops = clip_flops(cfg, "pretrain")
    if args.profile:
        profile_fn({"transformers": train_case(theirs, 32, "pretrain", True, False, cfg),
                    "ours": train_case(ours, 32, "pretrain", False, True, cfg)}, "pretrain b32")
    measure("pretrain b32 transformers (AdamW foreach)", train_case(theirs, 32, "pretrain", True, False, cfg), 32,
            flops, peak, rows, iters)
    measure("pretrain b32 ours (AdamW foreach)", train_case(ours, 32, "pretrain", False, False, cfg), 32, flops,
            peak, rows, iters)
    measure("pretrain b32 ours (AdamW fused)", train_case(ours, 32, "pretrain", False, True, cfg), 32, flops, peak,
            rows, iters)
    for batch in (64, 128, 256):
        if measure(f"pretrain b{batch} ours (AdamW fused)", train_case(ours, batch, "pretrain", False, True, cfg),
                   batch, flops, peak, rows, max(5, iters // 3)) is None:
            break
    for mode in modes[:2] if args.compile else []:
        measure(f"pretrain b32 ours compiled {mode}", train_case(ours, 32, "pretrain", False, True, cfg, mode),
                32, flops, peak, rows, iters)
    if args.compile:
        measure("pretrain b128 ours compiled default", train_case(ours, 128, "pretrain", False, True, cfg, "default"),
                128, flops, peak, rows, max(5, iters // 3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd models")
    parser.add_argument("--json", type=Path, help="write all rows here")
    parser.add_argument("--profile", action="store_true", help="print the top CUDA kernels of each workload")
    parser.add_argument("--only", choices=["inference", "finetune", "pretrain"], action="append",
                        help="run only these workloads (repeatable)")
    parser.add_argument("--autotune", action="store_true", help="also time torch.compile mode='max-autotune'")
    args = parser.parse_args()
    import transformers

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    iters = 10 if args.quick else 30
    report: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                    "transformers": transformers.__version__, "python": platform.python_version()}
    peak = matmul_peak()
    report["matmul_peak_tflops"] = peak
    print(json.dumps(report), flush=True)
    check_agreement(report)
    print(f"agreement (bf16): {report}", flush=True)
    rows: list = []

    wanted = set(args.only or ["inference", "finetune", "pretrain"])
    modes = ["default", "reduce-overhead"] + (["max-autotune"] if args.autotune else [])
    if "inference" in wanted:
        run_inference(args, modes, peak, rows, iters)
    if "finetune" in wanted:
        run_finetune(args, modes, peak, rows, iters)
    if "pretrain" in wanted:
        run_pretrain(args, modes, peak, rows, iters)
    by_case = {r["case"]: r for r in rows}
    print("\nratios (ours / transformers, clips/s):")
    for ours_case, ref_case in [
        ("inference b1 ours", "inference b1 transformers"),
        ("inference b16 ours", "inference b16 transformers"),
        ("inference b64 ours", "inference b64 transformers"),
        ("inference b16 ours compiled default", "inference b16 transformers"),
        ("inference b16 ours compiled reduce-overhead", "inference b16 transformers"),
        ("finetune b16 ours (AdamW fused)", "finetune b16 transformers (AdamW foreach)"),
        ("finetune b16 ours compiled default", "finetune b16 transformers (AdamW foreach)"),
        ("finetune b16 ours compiled reduce-overhead", "finetune b16 transformers (AdamW foreach)"),
        ("pretrain b32 ours (AdamW fused)", "pretrain b32 transformers (AdamW foreach)"),
        ("pretrain b32 ours compiled default", "pretrain b32 transformers (AdamW foreach)"),
        ("pretrain b32 ours compiled reduce-overhead", "pretrain b32 transformers (AdamW foreach)"),
    ]:
        if ours_case in by_case and ref_case in by_case:
            ratio = by_case[ours_case]["clips_per_s"] / by_case[ref_case]["clips_per_s"]
            print(f"  {ours_case:<40} {ratio:5.2f}x")
    report["rows"] = rows
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
