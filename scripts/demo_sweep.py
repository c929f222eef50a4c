"""Choose the demo's recipe on the validation clips, and keep the raw results the docs quote.

Five commands:

    python scripts/demo_sweep.py run [VARIANTS.json] [--parallel N] [--out RESULTS.jsonl] [--device cuda]
    python scripts/demo_sweep.py test [VARIANTS.json] [--name NAME | --select RESULTS.jsonl] [--out RESULTS.jsonl]
    python scripts/demo_sweep.py select [RESULTS.jsonl]
    python scripts/demo_sweep.py record DEMO_OUT/results.json ... [--name default] [--out RESULTS.jsonl]
    python scripts/demo_sweep.py table [RESULTS.jsonl] [--write docs/demo.md]

`run` runs each variant of VARIANTS.json (default scripts/demo_variants.json) for each of its
seeds through `run_demo` (the real pipeline: H.264 files, decoding, both fine-tunings) with the
test clips left unseen, several runs at a time, each in its own process, and appends a line of
JSON per run to RESULTS.jsonl. The file bounds the sweep: its variants and seeds are fixed before
it runs, and `run` refuses more than MAX_RUNS runs. `select` names the variant with the highest
mean validation accuracy of the pretrained model (ties: the first listed). That variant becomes
the default recipe in `videomae.demo`; `test` (or `videomae demo --seed S` once it is the default)
scores it on the test clips, once per seed, and `record` adds `videomae demo` runs' results.json
to RESULTS.jsonl. `table` prints the
docs' table from RESULTS.jsonl; with --write it replaces the table between the markers in that
file (docs/demo.md).

VARIANTS.json: {"seeds": [0, 1, 2], "variants": [{"name": "e12", "pretrain": {"epochs": 12}}, ...]};
a variant is the default recipe with fields replaced ("data", "model", "pretrain", "finetune",
"sampling_rate"). On a 16-core GPU machine, 6-11 runs at a time with 3 loader processes each
keep it busy (data loading, not the GPU, is the limit for models this small).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ROOT / "scripts" / "demo_variants.json"
RESULTS = ROOT / "docs" / "demo_sweep_results.jsonl"
DOC = ROOT / "docs" / "demo.md"
MAX_RUNS = 48  # the bound: 16 variants x 3 seeds
BEGIN, END = "<!-- demo_sweep.py table: begin -->", "<!-- demo_sweep.py table: end -->"
RECIPE_KEYS = ("data", "model", "pretrain", "finetune", "sampling_rate")


# --------------------------------------------------------------------------- running
def run_variant(variant: dict[str, Any], seed: int, out_root: str, device: str, workers: int,
                score_test: bool = False) -> dict[str, Any]:
    """Run one variant for one seed in this process (the test clips unseen unless `score_test`); its record."""
    from videomae.demo import RECIPES, run_demo
    from videomae.train.metrics import read_metrics

    recipe = RECIPES["default"]
    data = {k: tuple(v) if isinstance(v, list) else v for k, v in variant.get("data", {}).items()}
    recipe = replace(
        recipe,
        data=replace(recipe.data, **data),
        model={**recipe.model, **variant.get("model", {})},
        pretrain={**recipe.pretrain, **variant.get("pretrain", {})},
        finetune={**recipe.finetune, **variant.get("finetune", {})},
        sampling_rate=variant.get("sampling_rate", recipe.sampling_rate),
    )
    out = Path(out_root) / f"{variant['name']}-{seed}{'-test' if score_test else ''}"
    results = run_demo(out, recipe, seed=seed, device=device, workers=workers, progress=False, score_test=score_test)
    losses = [m["loss"] for m in read_metrics(out / "pretrain") if m["kind"] == "train"]
    return _record(variant["name"], results, f"demo_sweep.py {'test' if score_test else 'run'} (device {device})",
                   changes={k: variant[k] for k in RECIPE_KEYS if k in variant},
                   pretrain_loss=losses[-1] if losses else None)


def _record(name: str, results: dict[str, Any], command: str, date: datetime.date | None = None,
            **extra: Any) -> dict[str, Any]:
    """One line of RESULTS.jsonl from a demo's results.json."""
    return {"name": name, "seed": results["seed"], "validation": results["validation_accuracy"],
            "test": results["test_accuracy"], "seconds": results["seconds"], "machine": results["machine"],
            "command": command, "date": (date or datetime.date.today()).isoformat(), **extra,
            "recipe": results["recipe"]}


def load_variants(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    spec = json.loads(path.read_text())
    variants, seeds = spec["variants"], spec["seeds"]
    names = [v["name"] for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: variant names repeat: {names}")
    unknown = [f"{v['name']}.{k}" for v in variants for k in v if k not in ("name", *RECIPE_KEYS)]
    if unknown:
        raise ValueError(f"{path}: unknown fields {unknown}; a variant may set {', '.join(RECIPE_KEYS)}")
    if len(variants) * len(seeds) > MAX_RUNS:
        raise ValueError(f"{path}: {len(variants)} variants x {len(seeds)} seeds = {len(variants) * len(seeds)} "
                         f"runs, more than the sweep's bound of {MAX_RUNS}")
    return variants, seeds


def run(args: argparse.Namespace, score_test: bool = False) -> int:
    """Each variant x seed in its own process, `args.parallel` at a time; with `score_test` (the
    `test` command) the runs also score the test clips."""
    variants, seeds = load_variants(Path(args.variants))
    if score_test:
        name = args.name or select(read_results(Path(args.select)))
        variants = [v for v in variants if v["name"] == name]
        if not variants:
            raise ValueError(f"{args.variants}: no variant named {name!r}")
        print(f"scoring the test clips: {name!r}, seeds {seeds}", flush=True)
    start = time.time()
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")

    def one(job: tuple[dict[str, Any], int]) -> str:
        variant, seed = job
        cmd = [sys.executable, __file__, "one", json.dumps(variant), str(seed), "--device", args.device,
               "--workers", str(args.workers), "--out-root", args.out_root] + (["--score-test"] if score_test else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        found = [line[7:] for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if not found:
            print(f"{variant['name']} seed {seed} failed: {proc.stderr[-800:]}", flush=True)
            return ""
        record = json.loads(found[0])
        val = record["validation"]
        test = record["test"] or {}
        print(f"{time.time() - start:5.0f}s {variant['name']} seed {seed}: validation accuracy "
              f"pretrained {val['pretrained']:.3f} scratch {val['scratch']:.3f}"
              + (f"; test {test['pretrained']:.3f} / {test['scratch']:.3f}" if test else ""), flush=True)
        return json.dumps(record)

    jobs = [(v, s) for v in variants for s in seeds]
    # each run's line is written as soon as it ends, so a sweep cut short keeps every finished run
    with ThreadPoolExecutor(args.parallel) as pool, open(args.out, "a") as f:
        for future in as_completed([pool.submit(one, job) for job in jobs]):
            line = future.result()
            if line:
                f.write(line + "\n")
                f.flush()
    return 0


# --------------------------------------------------------------------------- reading
def read_results(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _by_name(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(r["name"], []).append(r)
    return groups


def _seed(record: dict[str, Any]) -> int:
    return record["seed"]


def select(records: list[dict[str, Any]]) -> str:
    """The variant whose pretrained model has the highest mean validation accuracy (the first
    listed on a tie). Test accuracies are not read."""
    groups = _by_name(records)
    means = {name: statistics.fmean(r["validation"]["pretrained"] for r in runs) for name, runs in groups.items()}
    return max(means, key=lambda name: means[name])  # max keeps the first of equals


def _spread(values: list[float]) -> str:
    """'0.790 (sd 0.056; 0.710-0.845)': mean, sample standard deviation, range."""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return (f"{statistics.fmean(values):.3f} (sd {statistics.stdev(values):.3f}; "
            f"{min(values):.3f}-{max(values):.3f})")


def table(records: list[dict[str, Any]]) -> str:
    """The docs' tables: validation accuracy of every variant (what the choice reads), then the
    test runs of each seed, with mean and spread."""
    lines = ["Validation accuracy (what the recipe is chosen on), mean over seeds (sample sd; range):", "",
             "| variant | machine | seeds | pretrained, then fine-tuned | from scratch |",
             "| --- | --- | --- | --- | --- |"]
    seen: set[tuple[str, int, str]] = set()
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:  # a run repeated on the same machine (the test command re-runs a variant) counts once
        key = (r["name"], r["seed"], r["machine"]["device"])
        if key not in seen:
            seen.add(key)
            groups.setdefault((r["name"], r["machine"]["device"]), []).append(r)
    for (name, machine), runs in groups.items():
        lines.append(f"| {name} | {machine} | {', '.join(str(r['seed']) for r in sorted(runs, key=_seed))} | "
                     f"{_spread([r['validation']['pretrained'] for r in runs])} | "
                     f"{_spread([r['validation']['scratch'] for r in runs])} |")
    tested = [r for r in records if r.get("test")]
    if tested:
        lines += ["", "Test accuracy (200 clips, chance 0.25; each seed's run scored once):", "",
                  "| recipe | seed | pretrained, then fine-tuned | from scratch | time (data + pretraining + "
                  "2 fine-tunings) | machine |", "| --- | --- | --- | --- | --- | --- |"]
        for r in sorted(tested, key=lambda r: (r["name"], r["machine"]["device"], r["seed"])):
            s = r["seconds"]
            lines.append(f"| {r['name']} | {r['seed']} | {r['test']['pretrained']:.3f} | {r['test']['scratch']:.3f} | "
                         f"{s['total']:.0f} s ({s['data']:.0f} + {s['pretrain']:.0f} + {s['finetune_pretrained']:.0f}"
                         f" + {s['finetune_scratch']:.0f}) | {r['machine']['device']}, torch {r['machine']['torch']} |")
        by_machine: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in tested:
            by_machine.setdefault((r["name"], r["machine"]["device"]), []).append(r)
        for (name, machine), runs in by_machine.items():
            if len(runs) > 1:
                mean = _spread([r["test"]["pretrained"] for r in runs])
                lines.append(f"| {name} | mean of {len(runs)} ({machine}) | **{mean}**"
                             f" | {_spread([r['test']['scratch'] for r in runs])} | "
                             f"{statistics.fmean(r['seconds']['total'] for r in runs):.0f} s | |")
    return "\n".join(lines)


def write_table(doc: Path, text: str) -> None:
    content = doc.read_text()
    if BEGIN not in content or END not in content:
        raise ValueError(f"{doc}: no '{BEGIN}' ... '{END}' markers to put the table between")
    head, rest = content.split(BEGIN, 1)
    doc.write_text(f"{head}{BEGIN}\n{text}\n{END}{rest.split(END, 1)[1]}")


# --------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("run", help="run the variants, test clips unseen")
    p.add_argument("variants", nargs="?", default=str(VARIANTS))
    p.add_argument("--parallel", type=int, default=1)
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--device", default="cuda")
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--out-root", default="/tmp/demo-sweep")
    p = commands.add_parser("test", help="score one variant (the selected one by default) on the test clips, "
                            "every seed")
    p.add_argument("variants", nargs="?", default=str(VARIANTS))
    p.add_argument("--name", help="the variant to score (default: `select` over --select's results)")
    p.add_argument("--select", default=str(RESULTS), help="the sweep's results to select from")
    p.add_argument("--parallel", type=int, default=3)
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--device", default="cuda")
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--out-root", default="/tmp/demo-sweep")
    p = commands.add_parser("one", help=argparse.SUPPRESS)  # internal: one variant and seed, in this process
    p.add_argument("variant")
    p.add_argument("seed", type=int)
    p.add_argument("--device", default="cuda")
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--out-root", default="/tmp/demo-sweep")
    p.add_argument("--score-test", action="store_true")
    p = commands.add_parser("select", help="the variant with the best mean validation accuracy")
    p.add_argument("results", nargs="?", default=str(RESULTS))
    p = commands.add_parser("record", help="add `videomae demo` runs (results.json) to the results")
    p.add_argument("demo_results", nargs="+")
    p.add_argument("--name", default="default")
    p.add_argument("--out", default=str(RESULTS))
    p = commands.add_parser("table", help="the docs' table, from the results")
    p.add_argument("results", nargs="?", default=str(RESULTS))
    p.add_argument("--write", metavar="DOC", help=f"replace the table in DOC (e.g. {DOC.relative_to(ROOT)})")
    args = parser.parse_args(argv)

    if args.command in ("run", "test"):
        return run(args, score_test=args.command == "test")
    if args.command == "one":
        record = run_variant(json.loads(args.variant), args.seed, args.out_root, args.device, args.workers,
                             args.score_test)
        print("RESULT " + json.dumps(record))
    elif args.command == "select":
        print(select(read_results(Path(args.results))))
    elif args.command == "record":
        with open(args.out, "a") as f:
            for path in args.demo_results:
                results = json.loads(Path(path).read_text())
                date = datetime.date.fromtimestamp(Path(path).stat().st_mtime)
                f.write(json.dumps(_record(args.name, results, f"videomae demo --seed {results['seed']}", date)) + "\n")
    else:
        text = table(read_results(Path(args.results)))
        if args.write:
            write_table(Path(args.write), text)
        else:
            print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
