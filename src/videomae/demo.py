"""`videomae demo`: the paper's data-efficiency finding, offline, on data anyone can regenerate.

1. Generate a synthetic motion data set (`videomae.data.synthetic`): a large unlabeled pool,
   a small labelled training set, a validation and a test set, as H.264 files.
2. Pretrain a tiny VideoMAE on the unlabeled clips (tube masking), with `videomae.train`.
3. Fine-tune it on the labelled clips.
4. Fine-tune the same architecture from random weights: same data, same steps, same recipe.
5. Evaluate both on the test clips; write the reconstruction of a test clip, the training
   curves and results.json to the output folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from .data.synthetic import SyntheticSpec, generate

logger = logging.getLogger("videomae.demo")

DESCRIPTION = """\
Show the paper's finding on a data set made on the spot (no download, no network):
a VideoMAE pretrained on unlabeled clips, then fine-tuned on a few labelled ones, beats the
same model trained from scratch on those labelled clips with the same budget.

The clips show a large shape gliding over a plain background; the class is the direction of
the motion (left, right, up, down), so no single frame tells the class. The default run takes
5-10 minutes on 2 idle CPU cores (about 2 on an H200 machine); --quick checks the pipeline in about a
minute (its accuracies mean nothing); --full uses more data and steps.

Writes to the output folder: data/ (the clips and their lists), pretrain/, finetune-pretrained/,
finetune-scratch/ (each a training run with its model/), reconstruction.png, curves.png and
results.json. The runs of an earlier demo in the same folder are replaced; its data is reused
when the data settings and seed are the same."""


@dataclass(frozen=True)
class DemoRecipe:
    """Everything the demo's result depends on besides the seed."""

    data: SyntheticSpec
    model: dict[str, Any]
    sampling_rate: int
    pretrain: dict[str, Any]
    finetune: dict[str, Any]
    eval_views: dict[str, int] = field(default_factory=lambda: {"eval_num_clips": 2, "eval_num_crops": 1})


# Small patches matter: with 4x4-pixel tubelets the shape spans several tokens, and
# reconstructing the hidden ones teaches the encoder where the shape goes. Four frames
# (two tubelets) keep a step cheap enough for a CPU.
_TINY_VIT = dict(
    image_size=32, patch_size=4, num_frames=4, tubelet_size=2, hidden_size=96, num_hidden_layers=4,
    num_attention_heads=4, intermediate_size=384, decoder_hidden_size=64, decoder_num_hidden_layers=1,
    decoder_num_attention_heads=2, decoder_intermediate_size=256, layer_norm_eps=1e-6,
)
# Batches count videos; each gives `num_sample` clips (repeated augmentation): 32 clips a step.
# More, smaller steps beat fewer large ones for the same clips; lr 2e-3 or more stalled.
_PRETRAIN = dict(mask_ratio=0.75, mask_type="tube", epochs=16, batch_size=8, num_sample=4, lr=1e-3,
                 warmup_epochs=2.0, weight_decay=0.05, betas=(0.9, 0.95), min_lr=1e-6, warmup_lr=1e-6,
                 train_crop="multiscale")
# One recipe for both fine-tunings (32 clips a step); only the starting weights differ, and the
# layer-wise lr decay, which exists to protect pretrained layers (1.0, none, from scratch).
# 20 epochs: chosen on the validation clips by scripts/demo_sweep.py (8 variants x 3 seeds;
# mean validation accuracy 0.792 against 0.719 with the 10 epochs used before; docs/demo.md).
_FINETUNE = dict(epochs=20, batch_size=8, num_sample=4, lr=1e-3, warmup_epochs=1.5, layer_decay=0.75,
                 drop_path=0.1, label_smoothing=0.1, mixup=0.0, cutmix=0.0, weight_decay=0.05,
                 betas=(0.9, 0.999), min_lr=1e-6, warmup_lr=1e-6, train_crop="multiscale", eval_every=4,
                 # Off: docs/demo.md's published figures were measured without RandAugment, random
                 # erasing and the small head init, which came to FinetuneOptions' defaults later.
                 rand_augment=None, random_erasing=0.0, head_init_scale=1.0)

# Large shapes (a radius of a quarter to a third of the frame): many tokens hold part of the
# shape, so the visible ones say where the hidden ones' pixels went; with small shapes the same
# budget of pretraining did not get past predicting the background.
_RADIUS = (0.25, 0.35)

RECIPES: dict[str, DemoRecipe] = {
    "default": DemoRecipe(
        data=SyntheticSpec(unlabeled=200, train=24, val=16, test=50, num_frames=24, size=32, radius=_RADIUS),
        model=_TINY_VIT, sampling_rate=4, pretrain=_PRETRAIN, finetune=_FINETUNE,
    ),
    "quick": DemoRecipe(
        data=SyntheticSpec(unlabeled=6, train=4, val=2, test=4, num_frames=24, size=32, radius=_RADIUS),
        model={**_TINY_VIT, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
               "num_attention_heads": 2, "decoder_hidden_size": 32, "decoder_intermediate_size": 64},
        sampling_rate=4, pretrain={**_PRETRAIN, "epochs": 2, "warmup_epochs": 1.0},
        finetune={**_FINETUNE, "epochs": 2, "warmup_epochs": 1.0, "eval_every": 1},
    ),
    "full": DemoRecipe(
        data=SyntheticSpec(unlabeled=400, train=24, val=16, test=100, num_frames=24, size=32, radius=_RADIUS),
        model=_TINY_VIT, sampling_rate=4, pretrain={**_PRETRAIN, "epochs": 40},
        finetune={**_FINETUNE, "epochs": 30, "eval_every": 5},
    ),
}


# --------------------------------------------------------------------------- running
def _stage(message: str) -> None:
    print(f"[demo] {message}", file=sys.stderr, flush=True)


_RUNS = ("pretrain", "finetune-pretrained", "finetune-scratch")


def _precision(device: str) -> str:
    """fp32 on every CPU, also one with bf16 matrix units where training's 'auto' is bf16: this
    width-96 model pretrained no faster in bf16 there (234 against 240 clips/s, docs/demo.md),
    and fp32 keeps a seed's published result the same on CPUs with and without them. A GPU: auto."""
    from .devices import resolve_device

    return "fp32" if resolve_device(device).type == "cpu" else "auto"


def _resolved_precision(device: str) -> str:
    from .devices import resolve_device
    from .train.runner import resolve_precision

    return resolve_precision(_precision(device), resolve_device(device))[0]


def _common(out: Path, name: str, seed: int, device: str, workers: int | None, progress: bool,
            sampling_rate: int) -> dict[str, Any]:
    return dict(output_dir=str(out / name), seed=seed, device=device, precision=_precision(device),
                num_workers=workers, progress=progress, sampling_rate=sampling_rate,
                flip=False,  # a flip turns "left" into "right"
                log_every=5, checkpoint_every=10**9, keep_last=1)


def run_demo(out_dir: str | os.PathLike = "demo-out", recipe: DemoRecipe = RECIPES["default"], seed: int = 0,
             device: str = "auto", workers: int | None = None, progress: bool = True,
             score_test: bool = True) -> dict[str, Any]:
    """Run the whole demo; returns (and writes to results.json) both test accuracies.
    `score_test=False` leaves the test clips unseen (accuracies None): a sweep that compares
    recipes chooses on the validation clips, and only the chosen recipe is scored on the test."""
    from . import visualize
    from .train import evaluate, finetune, pretrain

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for run in _RUNS:  # a new demo, not a continuation of an earlier one in the same folder
        shutil.rmtree(out / run, ignore_errors=True)
    times: dict[str, float] = {}
    start = time.perf_counter()

    _stage(f"1/5 generating the data set in {out / 'data'}")
    t = time.perf_counter()
    data = generate(out / "data", replace(recipe.data, seed=seed), progress=progress)
    times["data"] = time.perf_counter() - t
    spec = recipe.data
    classes = len(data.classes)
    _stage(f"    {spec.unlabeled * classes + spec.train * classes} unlabeled clips for pretraining, "
           f"{spec.train * classes} labelled for fine-tuning, {spec.test * classes} for testing "
           f"({times['data']:.0f} s)")

    model_config = out / "model-config.json"
    model_config.write_text(json.dumps(recipe.model, indent=2) + "\n")
    common = dict(seed=seed, device=device, workers=workers, progress=progress, sampling_rate=recipe.sampling_rate)

    _stage("2/5 pretraining on the unlabeled clips (masked reconstruction, no labels)")
    t = time.perf_counter()
    pre = pretrain(data=str(data.pretrain_list), model=str(model_config), short_side=spec.size,
                   **_common(out, "pretrain", **common), **recipe.pretrain)
    times["pretrain"] = time.perf_counter() - t
    _stage(f"    {pre['step']} steps, final loss {pre['loss']:.4f} ({times['pretrain']:.0f} s)")

    # Curves follow the validation clips; the test clips are scored once, at the end.
    finetune_args = dict(data=str(data.list_path("train")), eval_data=str(data.list_path("val")),
                         labels=str(data.labels_path), short_side=spec.size, **recipe.finetune, **recipe.eval_views)
    runs, tests = {}, {}
    for number, (name, init) in enumerate((("pretrained", pre["model_dir"]), ("scratch", None)), start=3):
        what = "from the pretrained weights" if init else "from random weights (the baseline)"
        _stage(f"{number}/5 fine-tuning {what} on {spec.train * classes} labelled clips")
        t = time.perf_counter()
        source = dict(init_from=init) if init else dict(model=str(model_config), layer_decay=1.0)
        runs[name] = finetune(**{**finetune_args, **source}, **_common(out, f"finetune-{name}", **common))
        if not score_test:
            times[f"finetune_{name}"] = time.perf_counter() - t
            _stage(f"    validation accuracy {runs[name]['eval']['top1']:.3f} ({times[f'finetune_{name}']:.0f} s)")
            continue
        tests[name] = evaluate(model=runs[name]["model_dir"], data=str(data.list_path("test")),
                               labels=str(data.labels_path), output_dir=str(out / f"finetune-{name}" / "test"),
                               seed=seed, device=device, precision=_precision(device), num_workers=workers,
                               progress=progress, sampling_rate=recipe.sampling_rate, **recipe.eval_views)
        times[f"finetune_{name}"] = time.perf_counter() - t
        _stage(f"    test accuracy {tests[name]['top1']:.3f} ({times[f'finetune_{name}']:.0f} s)")

    _stage("5/5 pictures: reconstruction.png, curves.png")
    pictures = _pictures(out, data, pre["model_dir"], recipe, seed, visualize)
    times["total"] = time.perf_counter() - start
    results = {
        "test_accuracy": {name: tests[name]["top1"] for name in tests} if score_test else None,
        "validation_accuracy": {name: runs[name]["eval"]["top1"] for name in runs},
        "test_videos": tests["pretrained"]["num_videos"] if score_test else None,
        "chance": 1.0 / classes,
        "seconds": {k: round(v, 1) for k, v in times.items()},
        "seed": seed,
        "recipe": _jsonable(asdict(recipe)),
        "machine": {"device": _device_name(device), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__, "python": platform.python_version(),
                    "precision": _resolved_precision(device)},
        "files": {"reconstruction": str(pictures[0]), "curves": str(pictures[1]),
                  "pretrained_model": pre["model_dir"],
                  "finetuned_models": {name: runs[name]["model_dir"] for name in runs}},
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _device_name(device: str) -> str:
    from .devices import resolve_device

    resolved = resolve_device(device)
    if resolved.type == "cuda":
        return torch.cuda.get_device_name(resolved)
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    # no thread count: training gives the model the CPUs its decoding workers leave
    return f"{os.cpu_count()} CPU cores ({model})"


def _pictures(out: Path, data: Any, pretrained_dir: str, recipe: DemoRecipe, seed: int, visualize: Any) -> list[Path]:
    from .modeling import VideoMAEForPreTraining
    from .pipeline import load_clips, load_processor
    from .train.metrics import read_metrics

    model = VideoMAEForPreTraining.from_pretrained(pretrained_dir)
    processor = load_processor(pretrained_dir, model.config)
    first_test = (data.root / data.list_path("test").read_text().split()[0])
    pixels = load_clips(first_test, processor, model.config.num_frames, recipe.sampling_rate, 1)
    rec = visualize.reconstruct_clip(model, pixels, recipe.pretrain["mask_ratio"], seed,
                                     processor.image_mean, processor.image_std)
    png = visualize.save_reconstruction_png(rec, out / "reconstruction.png")

    def series(run: str, kind: str, key: str, x: str = "step") -> list[tuple[float, float]]:
        return [(r[x], r[key]) for r in read_metrics(out / run) if r.get("kind") == kind and r.get(key) is not None]

    panels = {
        "pretraining loss (masked patches)": {"pretraining": series("pretrain", "train", "loss")},
        "fine-tuning loss": {"pretrained": series("finetune-pretrained", "train", "loss"),
                             "from scratch": series("finetune-scratch", "train", "loss")},
        "validation accuracy": {"pretrained": series("finetune-pretrained", "eval", "top1"),
                                "from scratch": series("finetune-scratch", "eval", "top1")},
    }
    curves = visualize.plot_curves(panels, out / "curves.png", title="VideoMAE pretraining vs training from scratch")
    return [png, curves]


def summary_table(results: dict[str, Any]) -> str:
    acc = results["test_accuracy"]
    secs = results["seconds"]
    lines = [
        f"test accuracy on {results['test_videos']} clips (chance {results['chance']:.2f}):",
        f"  pretrained, then fine-tuned   {acc['pretrained']:.3f}",
        f"  trained from scratch          {acc['scratch']:.3f}",
        f"time: {secs['total']:.0f} s in all (data {secs['data']:.0f}, pretraining {secs['pretrain']:.0f}, "
        f"fine-tuning {secs['finetune_pretrained']:.0f} + {secs['finetune_scratch']:.0f}) on "
        f"{results['machine']['device']}",
        f"pictures: {results['files']['reconstruction']}, {results['files']['curves']}",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo-out", metavar="DIR", help="output folder (default: demo-out)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data, the models and training (default: 0)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a tiny run that checks the pipeline (about a minute)")
    size.add_argument("--full", action="store_true", help="more data and steps (about 4 times longer)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda (default: auto)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="data loading processes (default: the training default for this machine)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


def main(args: argparse.Namespace) -> int:
    recipe = RECIPES["quick" if args.quick else "full" if args.full else "default"]
    results = run_demo(args.out, recipe, seed=args.seed, device=args.device, workers=args.workers,
                       progress=args.progress)
    print(summary_table(results))
    return 0


__all__ = ["DemoRecipe", "RECIPES", "run_demo", "summary_table", "DESCRIPTION"]
