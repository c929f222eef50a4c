"""Shared by the reliability tests: an exact-exception check, a per-test alarm so a hang
fails instead of stalling the run, the tiny model fields, and a pickle that runs code."""

from __future__ import annotations

import contextlib
import os
import signal

import pytest
from train_fixtures import TINY_CONFIG

TINY = dict(TINY_CONFIG, num_hidden_layers=1)


@contextlib.contextmanager
def raises_exactly(error: type[BaseException], *fragments: str, where: str = ""):
    """The block raises `error` itself (not a subclass or a parent) with every fragment in its message."""
    with pytest.raises(BaseException) as info:
        yield info
    label = f"{where}: " if where else ""
    assert type(info.value) is error, f"{label}{type(info.value).__name__}: {info.value} (expected {error.__name__})"
    for fragment in fragments:
        assert fragment in str(info.value), f"{label}{fragment!r} not in {str(info.value)!r}"


@pytest.fixture(autouse=True)
def time_limit():
    """A hang fails the test instead of stalling the run (for Python code; decoding that could
    stall inside FFmpeg runs in a subprocess with its own timeout, below)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(signum, frame):
        raise TimeoutError("ran past 120 s: a hang")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(120)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


class RunsCode:
    """Unpickling this runs `touch marker`: what a malicious checkpoint does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))
