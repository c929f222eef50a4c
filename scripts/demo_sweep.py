"""Try variants of the demo's default recipe side by side, several runs at a time.

The default recipe in `videomae.demo` was chosen with this script (the table is in
docs/demo.md). Each variant is the default recipe with some fields replaced, run through
`run_demo` (the real pipeline: H.264 files, decoding, both fine-tunings, the test set) in its
own process; a line of JSON per run goes to OUTFILE.

    python scripts/demo_sweep.py VARIANTS.json PARALLEL OUTFILE [--device cuda] [--workers 3]

VARIANTS.json is a list of objects: {"name": "e16", "seed": 0, "data": {"radius": [0.2, 0.3]},
"model": {...}, "pretrain": {"epochs": 16}, "finetune": {...}}; every key but name is optional.
On a 16-core GPU machine, 6-11 runs at a time with 3 loader processes each keep it busy (data
loading, not the GPU, is the limit for models this small).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any


def run_variant(variant: dict[str, Any], out_root: str, device: str, workers: int) -> dict[str, Any]:
    """Run one variant in this process and return its accuracies, seconds and final loss."""
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
    seed = variant.get("seed", 0)
    out = Path(out_root) / f"{variant['name']}-{seed}"
    results = run_demo(out, recipe, seed=seed, device=device, workers=workers, progress=False)
    losses = [m["loss"] for m in read_metrics(out / "pretrain") if m["kind"] == "train"]
    return {"test": results["test_accuracy"], "val": results["validation_accuracy"],
            "seconds": results["seconds"], "pretrain_loss": losses[-1] if losses else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants")
    parser.add_argument("parallel", type=int)
    parser.add_argument("outfile")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--out-root", default="/tmp/demo-sweep")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run this JSON variant here
    args = parser.parse_args()

    if args.one:
        print("RESULT " + json.dumps(run_variant(json.loads(args.one), args.out_root, args.device, args.workers)))
        return 0

    variants = json.loads(Path(args.variants).read_text())
    start = time.time()
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")

    def one(variant: dict[str, Any]) -> str:
        cmd = [sys.executable, __file__, args.variants, "1", args.outfile, "--device", args.device,
               "--workers", str(args.workers), "--out-root", args.out_root, "--one", json.dumps(variant)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        found = [line[7:] for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        result = json.loads(found[0]) if found else {"error": proc.stderr[-800:]}
        result.update(name=variant["name"], seed=variant.get("seed", 0))
        if "test" in result:
            test = result["test"]
            print(f"{time.time() - start:5.0f}s {result['name']} seed {result['seed']}: test accuracy "
                  f"pretrained {test['pretrained']:.3f} scratch {test['scratch']:.3f}", flush=True)
        else:
            print(f"{result['name']} seed {result['seed']} failed: {result['error']}", flush=True)
        return json.dumps(result)

    with ThreadPoolExecutor(args.parallel) as pool, open(args.outfile, "a") as f:
        for line in pool.map(one, variants):
            f.write(line + "\n")
            f.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
