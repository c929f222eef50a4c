"""Load test of `videomae serve` on loopback: N clients posting a clip for S seconds.

    python benchmarks/serve_load.py                      # 16 clients, 30 s, tiny classifier
    python benchmarks/serve_load.py --clients 4 --seconds 10 -- --wait-ms 0

Starts the server as a separate process on 127.0.0.1 (a port the system picks) with a tiny
random classifier (the tests' one: 32x32, 4 frames, one block), then runs `--clients`
threads, each sending the same clip to /v1/classify as fast as answers come back, for
`--seconds`. Bounded: the run stops at the deadline; each request has a 60 s timeout.
Prints answered requests/s, p50 / p99 latency (of 200 answers), the mean batch size from the
server's /metrics (requests and clips per model batch), and counts of every answer that was
not a 200 (the only acceptable kind is 503, the full-queue answer). Arguments after `--` go
to `videomae serve`.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))  # the server fixture and tiny checkpoints of the tests

from serve_fixtures import make_checkpoints, make_clip, percentile, running_server  # noqa: E402


def _batch_means(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    batches = delta('videomae_batch_requests_count{kind="classify"}')
    return {"batches": batches,
            "requests_per_batch": delta('videomae_batch_requests_sum{kind="classify"}') / batches if batches else 0.0,
            "clips_per_batch": delta('videomae_batch_clips_sum{kind="classify"}') / batches if batches else 0.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--json", action="store_true", help="also print the results as one JSON line")
    parser.add_argument("serve_args", nargs="*", help="extra flags for `videomae serve` (after --)")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 256 or not 0 < args.seconds <= 600:
        parser.error("--clients 1..256 and --seconds up to 600")

    with tempfile.TemporaryDirectory(prefix="videomae-serve-load-") as folder:
        root = Path(folder)
        model = make_checkpoints(root)["classifier"]
        clip = make_clip(root / "clip.mp4", num_frames=48, size=64)
        body = clip.read_bytes()
        with running_server(model, *args.serve_args) as server:
            assert server.upload("/v1/classify", clip).status == 200  # warm: first batch, first decode
            info = server.request("GET", "/v1/model").json()
            before = server.metrics()
            latencies: list[float] = []
            statuses: Counter = Counter()
            lock = threading.Lock()
            deadline = time.perf_counter() + args.seconds

            def client() -> None:
                while time.perf_counter() < deadline:
                    start = time.perf_counter()
                    try:
                        status = server.request("POST", "/v1/classify", body, {"Content-Type": "video/mp4"},
                                                timeout=60).status
                    except OSError as err:
                        status = f"connection error: {type(err).__name__}"
                    elapsed = time.perf_counter() - start
                    with lock:
                        statuses[status] += 1
                        if status == 200:
                            latencies.append(elapsed)

            threads = [threading.Thread(target=client) for _ in range(args.clients)]
            began = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(args.seconds + 120)
            wall = time.perf_counter() - began
            after = server.metrics()

    ok = statuses.get(200, 0)
    results = {
        "clients": args.clients, "seconds": round(wall, 1), "requests_ok": ok,
        "requests_per_s": round(ok / wall, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1), "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        **{k: round(v, 2) for k, v in _batch_means(before, after).items()},
        "not_200": {str(k): v for k, v in statuses.items() if k != 200},
        "clips_per_request": info["clip"]["num_clips"], "batch_limit_clips": info["limits"]["batch_size"],
        "wait_ms": info["limits"]["wait_ms"], "max_queue": info["limits"]["max_queue"],
        "python": platform.python_version(), "serve_args": args.serve_args,
    }
    print(f"{args.clients} clients, {wall:.1f} s: {ok} answered (200), {results['requests_per_s']} requests/s, "
          f"p50 {results['p50_ms']} ms, p99 {results['p99_ms']} ms")
    print(f"model batches: {results['batches']:.0f}, mean {results['requests_per_batch']} requests = "
          f"{results['clips_per_batch']} clips per batch ({results['clips_per_request']} clips a request, "
          f"limit {results['batch_limit_clips']}, wait window {results['wait_ms']:g} ms)")
    print(f"answers other than 200: {results['not_200'] or 'none'}")
    if args.json:
        print(json.dumps(results))
    dropped = {k: v for k, v in results["not_200"].items() if k != "503"}
    return 1 if dropped else 0


if __name__ == "__main__":
    sys.exit(main())
