"""benchmarks/gpu.py on a CPU: every case runs on a tiny model (`--device cpu --tiny`), the
compiled paths through torch.compile's eager backend, and the comparison takes the best of
each side."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")
SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu.py"


@pytest.fixture(scope="module")
def gpu_bench():
    spec = importlib.util.spec_from_file_location("gpu_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_best_of_each_compares_the_fastest_case_of_each_side(gpu_bench):
    rows = [{"case": "pretrain b32 transformers", "clips_per_s": 481.0},
            {"case": "pretrain b32 transformers compiled default", "clips_per_s": 388.0},
            {"case": "pretrain b32 ours", "clips_per_s": 700.0},
            {"case": "pretrain b32 ours compiled reduce-overhead", "clips_per_s": 1428.0},
            {"case": "pretrain b64 ours", "clips_per_s": 5000.0},  # another batch: not this workload
            {"case": "inference b16 transformers", "clips_per_s": 900.0},
            {"case": "inference b16 transformers compiled default", "clips_per_s": 969.0},
            {"case": "inference b16 ours compiled default", "clips_per_s": 1172.0}]
    best = {r["workload"]: r for r in gpu_bench.best_of_each(rows, ["inference b16", "pretrain b32"])}
    assert best["pretrain b32"]["transformers_best"] == "pretrain b32 transformers"  # eager beat compiled
    assert best["pretrain b32"]["ours_best"] == "pretrain b32 ours compiled reduce-overhead"
    assert best["pretrain b32"]["ratio"] == pytest.approx(1428 / 481)
    assert best["inference b16"]["transformers_best"] == "inference b16 transformers compiled default"
    assert best["inference b16"]["ratio"] == pytest.approx(1172 / 969)


def test_pretraining_step_draws_a_cpu_mask_each_step_as_the_trainer_does(gpu_bench, monkeypatch):
    drawn = []

    class Counting(gpu_bench.MaskGenerator):
        def __call__(self, batch_size, generator):
            mask = super().__call__(batch_size, generator)
            drawn.append(mask)
            return mask

    monkeypatch.setattr(gpu_bench, "MaskGenerator", Counting)
    b = gpu_bench.Bench("cpu", tiny=True, iters=2, compile_backend="eager")
    for hf in (False, True):
        theirs, ours, cfg = gpu_bench.build_pair("VideoMAEForPreTraining", b, use_mean_pooling=False)
        step = gpu_bench.train_case(theirs if hf else ours, 2, "pretrain", hf, cfg, b)
        before = [p.detach().clone() for p in (theirs if hf else ours).parameters()]
        for _ in range(3):
            step()
        after = list((theirs if hf else ours).parameters())
        assert any(not torch.equal(x, y) for x, y in zip(before, after))  # the step trains
    assert len(drawn) == 6 and all(m.device.type == "cpu" and m.shape == (2, cfg.num_patches) for m in drawn)
    assert not torch.equal(drawn[0], drawn[1])  # a new mask each step


def test_every_case_runs_on_a_tiny_model_on_the_cpu(gpu_bench, tmp_path, capsys):
    report = gpu_bench.main(["--device", "cpu", "--tiny", "--compile", "--compile-backend", "eager", "--profile",
                             "--json", str(tmp_path / "out.json")])
    printed = capsys.readouterr().out
    for title in ("inference b16", "finetune b2", "finetune b2 compiled default", "pretrain b2 compiled default"):
        for who in ("transformers", "ours"):  # --profile: a kernel table of each side, training compiled too
            assert f"=== {title} {who} (2 calls) ===" in printed
    cases = {r["case"] for r in report["rows"]}
    for workload in ("inference b16", "inference b64", "finetune b16", "pretrain b32"):
        for who in ("transformers", "ours"):
            for suffix in ("", " compiled default", " compiled reduce-overhead"):
                assert f"{workload} {who}{suffix}" in cases
    assert "inference b1 ours" in cases and "pretrain b128 ours compiled default" in cases
    assert [r["workload"] for r in report["best"]] == ["inference b16", "inference b64", "finetune b16",
                                                       "pretrain b32"]
    assert all(r["ratio"] > 0 and r["ours_best"].startswith(r["workload"] + " ours") for r in report["best"])
    assert (tmp_path / "out.json").is_file()


def test_fp8_rows_are_compared_with_the_bf16_bests_and_not_counted_among_them(gpu_bench):
    rows = [{"case": "inference b64 transformers compiled default", "clips_per_s": 1000.0},
            {"case": "inference b64 ours compiled default", "clips_per_s": 1200.0},
            {"case": "inference b64 fp8 ours compiled default", "clips_per_s": 1800.0}]
    best = gpu_bench.best_of_each(rows, ["inference b64"])[0]
    assert best["ours_best"] == "inference b64 ours compiled default"  # bf16 only
    (fp8,) = gpu_bench.fp8_ratios(rows)
    assert fp8["vs_ours_bf16_best"] == pytest.approx(1.5) and fp8["vs_transformers_best"] == pytest.approx(1.8)
