"""videomae.serve without HTTP: the admission limit, the batching worker, the metrics text,
and that the library and its CLI import without the serve extra."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from videomae.serve.batching import Admission, Batcher, Busy, Job
from videomae.serve.metrics import Counter, Histogram, Registry, parse


def _batcher(calls: list, admission: Admission | None = None, fail: bool = False, **kwargs) -> Batcher:  # noqa: ANN003
    def run(kind: str, jobs):  # noqa: ANN001,ANN202
        calls.append((kind, [job.payload for job in jobs]))
        if fail:
            raise RuntimeError("out of memory")
        return [job.payload * 10 for job in jobs]

    return Batcher(run, admission=admission or Admission(16), **{"max_clips": 8, "wait_s": 0.05, **kwargs})


def test_admission_refuses_past_the_limit_and_frees_each_place_once() -> None:
    admission = Admission(2)
    first, _ = admission.enter(), admission.enter()
    with pytest.raises(Busy, match="2 requests waiting"):
        admission.enter()
    first.release()
    first.release()  # twice: still one place
    assert admission.count == 1
    admission.enter()
    assert admission.count == 2


@pytest.mark.parametrize("wait_s", [0.0, 0.05])
def test_jobs_waiting_together_share_one_batch_and_keep_their_results(wait_s: float) -> None:
    calls: list = []
    batcher = _batcher(calls, wait_s=wait_s)  # no window: still the jobs already queued
    jobs = [Job("classify", i, size=1) for i in range(3)]
    futures = [batcher.submit(job) for job in jobs]  # queued before the worker starts
    batcher.start()
    assert [f.result(10) for f in futures] == [0, 10, 20]
    batcher.stop()
    assert calls == [("classify", [0, 1, 2])]


def test_a_batch_stops_at_max_clips_and_kinds_run_apart() -> None:
    calls: list = []
    batcher = _batcher(calls, max_clips=4)
    futures = [batcher.submit(Job(kind, i, size=3)) for i, kind in enumerate(["embed", "classify", "embed", "embed"])]
    batcher.start()
    assert [f.result(10) for f in futures] == [0, 10, 20, 30]
    batcher.stop()
    # 3 + 3 clips reach 4: the first batch is jobs 0 and 1, split by kind; then 2 and 3
    assert calls == [("embed", [0]), ("classify", [1]), ("embed", [2, 3])]


def test_a_lone_request_does_not_wait_for_the_window() -> None:
    calls: list = []
    batcher = _batcher(calls, wait_s=5.0)  # nobody else admitted: the window is skipped
    batcher.start()
    start = time.perf_counter()
    assert batcher.submit(Job("embed", 1, size=1)).result(10) == 10
    assert time.perf_counter() - start < 2.0
    batcher.stop()


def test_the_window_gathers_a_request_still_on_its_way() -> None:
    calls: list = []
    admission = Admission(4)
    batcher = _batcher(calls, admission=admission, wait_s=2.0)
    batcher.start()
    late = admission.enter()  # admitted, still decoding
    first = batcher.submit(Job("embed", 1, size=1))
    time.sleep(0.2)
    second = batcher.submit(Job("embed", 2, size=1, ticket=late))
    assert (first.result(10), second.result(10)) == (10, 20)
    assert calls == [("embed", [1, 2])] and admission.count == 0  # taken by the worker: its place is free
    batcher.stop()


def test_a_failed_batch_fails_each_of_its_jobs_and_the_worker_goes_on() -> None:
    calls: list = []
    batcher = _batcher(calls, fail=True)
    futures = [batcher.submit(Job("embed", i, size=1)) for i in range(2)]
    batcher.start()
    for future in futures:
        with pytest.raises(RuntimeError, match="out of memory"):
            future.result(10)
    assert batcher._thread.is_alive()
    batcher.stop()


def test_a_cancelled_job_is_skipped() -> None:
    calls: list = []
    batcher = _batcher(calls)
    gone, kept = Job("embed", 1, size=1), Job("embed", 2, size=1)
    batcher.submit(gone).cancel()
    future = batcher.submit(kept)
    batcher.start()
    assert future.result(10) == 20 and calls == [("embed", [2])]
    batcher.stop()


def test_the_hold_file_keeps_the_worker_waiting(tmp_path) -> None:  # noqa: ANN001
    hold = tmp_path / "hold"
    hold.touch()
    calls: list = []
    batcher = _batcher(calls, hold_file=hold)
    batcher.start()
    future = batcher.submit(Job("embed", 1, size=1))
    deadline = time.monotonic() + 10
    while not batcher.busy and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert batcher.busy and not future.done() and calls == []
    hold.unlink()
    assert future.result(10) == 10
    batcher.stop()


def test_metrics_text_format() -> None:
    registry = Registry()
    counter = registry.add(Counter("x_total", "things"))
    histogram = registry.add(Histogram("y_seconds", "time", (0.1, 1.0)))
    counter.inc(endpoint="/v1/a", status="200")
    counter.inc(2, endpoint="/v1/a", status="200")
    threads = [threading.Thread(target=histogram.observe, args=(v,), kwargs={"kind": 'a"b'}) for v in (0.05, 0.5, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    text = registry.render()
    assert "# TYPE x_total counter" in text and "# TYPE y_seconds histogram" in text
    samples = parse(text)
    assert samples['x_total{endpoint="/v1/a",status="200"}'] == 3
    assert samples['y_seconds_bucket{kind="a\\"b",le="0.1"}'] == 1  # cumulative buckets, escaped label
    assert samples['y_seconds_bucket{kind="a\\"b",le="1"}'] == 2
    assert samples['y_seconds_bucket{kind="a\\"b",le="+Inf"}'] == 3
    assert samples['y_seconds_count{kind="a\\"b"}'] == 3 and samples['y_seconds_sum{kind="a\\"b"}'] == 5.55


def test_the_library_and_cli_import_without_the_web_framework() -> None:
    code = ("import sys, videomae, videomae.serve, videomae.serve.service, videomae.cli\n"
            "videomae.cli.build_parser()\n"
            "assert not {'fastapi', 'uvicorn', 'starlette'} & set(sys.modules), sorted(sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
