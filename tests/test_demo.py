"""`videomae demo --quick`: the whole pipeline runs and leaves its outputs (the accuracy claim
itself needs the default budget; docs/demo.md has the measured numbers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from videomae.demo import RECIPES


def test_quick_demo_writes_everything(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, "-m", "videomae", "demo", "--quick", "--out", str(out), "--no-progress",
                             "--device", "cpu", "--seed", "1"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "pretrained, then fine-tuned" in result.stdout and "from scratch" in result.stdout
    # readable progress: no per-class table at each evaluation during training (one at the end of
    # each fine-tuning and one on the test set), the unused decoder in one line, not by name
    assert result.stderr.count("per-class accuracy") == 4, result.stderr
    assert "pretraining decoder's" in result.stderr and "decoder.blocks.0" not in result.stderr

    results = json.loads((out / "results.json").read_text())
    assert set(results["test_accuracy"]) == {"pretrained", "scratch"}
    assert all(0.0 <= acc <= 1.0 for acc in results["test_accuracy"].values())
    assert results["test_videos"] == RECIPES["quick"].data.test * 4
    assert results["seed"] == 1 and results["seconds"]["total"] > 0
    # fp32 on every CPU, also one with bf16 units where training's 'auto' is bf16 (docs/demo.md)
    assert results["machine"]["precision"] == "fp32" and "precision: fp32 (as asked)" in result.stderr

    for name in ("reconstruction.png", "curves.png"):
        with Image.open(out / name) as image:
            assert image.size[0] > 100 and image.size[1] > 50
    for run in ("pretrain", "finetune-pretrained", "finetune-scratch"):
        assert (out / run / "model" / "config.json").is_file()
        assert (out / run / "metrics.jsonl").is_file()
    # the two fine-tunings differ only in their starting weights
    pretrained = json.loads((out / "finetune-pretrained" / "options.json").read_text())
    scratch = json.loads((out / "finetune-scratch" / "options.json").read_text())
    differ = {k for k in pretrained if pretrained[k] != scratch.get(k)}
    assert differ == {"init_from", "model", "output_dir", "layer_decay"}
    assert scratch["layer_decay"] == 1.0
    assert pretrained["flip"] is False


SWEEP = Path(__file__).parent.parent / "scripts" / "demo_sweep.py"


def _sweep_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("demo_sweep", SWEEP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sweep_script_runs_a_variant_with_the_test_clips_unseen(tmp_path: Path) -> None:
    """scripts/demo_sweep.py run drives run_demo and records validation accuracy only: the
    test split is for the chosen recipe, scored once."""
    variants = {"seeds": [2], "variants": [{
        "name": "tiny",
        "data": {"unlabeled": 1, "train": 2, "val": 1, "test": 1, "radius": [0.2, 0.3]},
        "model": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2},
        "pretrain": {"epochs": 1, "warmup_epochs": 0.5}, "finetune": {"epochs": 1, "warmup_epochs": 0.5},
    }]}
    (tmp_path / "v.json").write_text(json.dumps(variants))
    result = subprocess.run([sys.executable, str(SWEEP), "run", str(tmp_path / "v.json"), "--out",
                             str(tmp_path / "out.jsonl"), "--device", "cpu", "--workers", "0", "--out-root",
                             str(tmp_path / "runs")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    line = json.loads((tmp_path / "out.jsonl").read_text())
    assert line["name"] == "tiny" and line["seed"] == 2, line
    assert set(line["validation"]) == {"pretrained", "scratch"} and line["pretrain_loss"] > 0
    assert line["test"] is None and not (tmp_path / "runs" / "tiny-2" / "finetune-pretrained" / "test").exists()
    assert line["recipe"]["data"]["radius"] == [0.2, 0.3] and line["changes"]["pretrain"]["epochs"] == 1
    spec = json.loads((tmp_path / "runs" / "tiny-2" / "data" / "spec.json").read_text())
    assert spec["radius"] == [0.2, 0.3] and spec["unlabeled"] == 1


def test_sweep_selects_on_validation_and_is_bounded(tmp_path: Path) -> None:
    sweep = _sweep_module()
    records = [{"name": "a", "seed": s, "validation": {"pretrained": v, "scratch": 0.3}, "test": {"pretrained": t}}
               for s, v, t in ((0, 0.70, 0.90), (1, 0.72, 0.90))]
    records += [{"name": "b", "seed": s, "validation": {"pretrained": v, "scratch": 0.3}, "test": {"pretrained": t}}
                for s, v, t in ((0, 0.75, 0.50), (1, 0.73, 0.50))]
    assert sweep.select(records) == "b"  # the better validation accuracy, whatever the test says
    too_many = {"seeds": [0, 1, 2], "variants": [{"name": f"v{i}"} for i in range(sweep.MAX_RUNS // 3 + 1)]}
    (tmp_path / "v.json").write_text(json.dumps(too_many))
    with pytest.raises(ValueError, match="bound"):
        sweep.load_variants(tmp_path / "v.json")
    variants, seeds = sweep.load_variants(sweep.VARIANTS)  # the committed sweep is within its bound
    assert len(variants) * len(seeds) <= sweep.MAX_RUNS and variants[0] == {"name": "default"}


def test_the_docs_table_is_the_one_the_raw_results_give() -> None:
    """docs/demo.md's results table regenerates from docs/demo_sweep_results.jsonl."""
    sweep = _sweep_module()
    records = sweep.read_results(sweep.RESULTS)
    doc = sweep.DOC.read_text()
    assert f"{sweep.BEGIN}\n{sweep.table(records)}\n{sweep.END}" in doc


def test_the_default_recipe_is_the_sweeps_choice_and_was_scored_on_test() -> None:
    """The default recipe is the variant the sweep chose on validation accuracy (never on test),
    and that exact recipe has test-scored runs for at least three seeds."""
    from dataclasses import asdict

    from videomae.demo import _jsonable

    sweep = _sweep_module()
    records = sweep.read_results(sweep.RESULTS)
    swept = [r for r in records if r["command"].startswith("demo_sweep.py run")]
    chosen = sweep.select(swept)
    assert all(r["test"] is None for r in swept)
    default = _jsonable(asdict(RECIPES["default"]))
    scored = [r for r in records if r["name"] == chosen and r["test"]]
    assert len({r["seed"] for r in scored}) >= 3
    for r in scored:
        assert r["recipe"] == default, r["command"]


def test_a_second_demo_in_the_same_folder_starts_afresh(tmp_path: Path) -> None:
    """Runs left by an earlier demo (other seed, finished checkpoints) must not be resumed
    or appended to: the second demo's numbers are its own."""
    from dataclasses import replace

    from videomae.demo import run_demo

    quick = RECIPES["quick"]
    tiny = replace(quick, model={**quick.model, "num_hidden_layers": 1},
                   pretrain={**quick.pretrain, "epochs": 1}, finetune={**quick.finetune, "epochs": 1})
    def losses() -> list[tuple[int, float]]:
        lines = (tmp_path / "pretrain" / "metrics.jsonl").read_text().splitlines()
        return [(m["step"], m["loss"]) for m in map(json.loads, lines) if m.get("kind") == "train"]

    first = run_demo(tmp_path, tiny, seed=3, device="cpu", workers=0, progress=False)
    logged = losses()
    second = run_demo(tmp_path, tiny, seed=3, device="cpu", workers=0, progress=False)
    assert logged and losses() == logged
    assert second["test_accuracy"] == first["test_accuracy"]
