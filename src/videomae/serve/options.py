"""The service's settings, checked before anything is loaded or bound."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TOKEN_ENV = "VIDEOMAE_SERVE_TOKEN"
HOLD_ENV = "VIDEOMAE_SERVE_HOLD"  # tests: while this file exists, the model worker waits
LOOPBACK = "127.0.0.1"


def _default_decode_workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return max(2, cpus)


@dataclass
class ServeOptions:
    """Args:
        model: checkpoint folder, hub id or original .pth.
        host, port: where to listen; port 0 lets the system pick one.
        token: bearer token clients must send; required unless host is 127.0.0.1.
        data_root: folder whose files JSON requests may name; None: uploads only.
        batch_size: most clips per model batch (requests of many clients share one).
        wait_ms: how long the worker waits for more requests before running a batch.
        max_queue: requests admitted and not yet on the model; past it, 503.
        max_upload_mb: upload size limit; past it, 413.
        timeout_s: per-request time limit, upload to answer; past it, 504.
        num_clips: clips per video when a request does not say.
        decode_workers: threads that decode videos.
        hold_file: while this file exists, the model worker waits (tests of a full queue).
    """

    model: str
    host: str = LOOPBACK
    port: int = 8000
    token: str | None = None
    data_root: Path | None = None
    device: str = "auto"
    dtype: str = "auto"
    offline: bool = False
    batch_size: int = 32
    wait_ms: float = 10.0
    max_queue: int = 64
    max_upload_mb: float = 200.0
    timeout_s: float = 60.0
    num_clips: int = 4
    decode_workers: int = _default_decode_workers()
    hold_file: Path | None = None

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)

    def check(self) -> None:
        """ValueError naming the setting that is wrong."""
        if self.host != LOOPBACK and not self.token:
            raise ValueError(f"--host {self.host}: a bearer token is required when binding to anything but "
                             f"{LOOPBACK}; pass --token or set {TOKEN_ENV}")
        if self.token is not None and (len(self.token) < 8 or any(c.isspace() for c in self.token)):
            raise ValueError("the token must be at least 8 characters, without spaces")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"--port {self.port}: expected 0 (any free port) to 65535")
        if self.data_root is not None and not Path(self.data_root).is_dir():
            raise ValueError(f"--data-root {self.data_root}: not a folder")
        for name, value in (("--batch-size", self.batch_size), ("--max-queue", self.max_queue),
                            ("--num-clips", self.num_clips), ("--decode-workers", self.decode_workers)):
            if value < 1:
                raise ValueError(f"{name} {value}: expected 1 or more")
        for name, value in (("--wait-ms", self.wait_ms), ("--max-upload-mb", self.max_upload_mb),
                            ("--timeout", self.timeout_s)):
            if not value >= 0 or (name != "--wait-ms" and value == 0):
                raise ValueError(f"{name} {value}: expected a positive number")


__all__ = ["ServeOptions", "TOKEN_ENV", "HOLD_ENV", "LOOPBACK"]
