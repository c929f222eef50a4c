"""A real `videomae serve` process on 127.0.0.1 (a port the system picks), tiny checkpoints
and an HTTP client on the standard library, for the serve tests and the load benchmark.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

TINY = dict(image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=1,
            num_attention_heads=2, intermediate_size=64)
DECODER = dict(decoder_hidden_size=32, decoder_num_hidden_layers=1, decoder_num_attention_heads=2,
               decoder_intermediate_size=64)
LABELS = ("left", "right", "up", "down", "still", "spin")
_READY = re.compile(r"on http://127\.0\.0\.1:(\d+)/")


def make_checkpoints(root: Path) -> dict[str, Path]:
    """A tiny classifier and a tiny pretraining checkpoint, each with its preprocessor."""
    from videomae import VideoMAEConfig, VideoMAEForPreTraining, VideoMAEForVideoClassification
    from videomae.processing import VideoMAEImageProcessor

    processor = VideoMAEImageProcessor(size={"shortest_edge": 32}, crop_size=32)
    torch.manual_seed(0)
    out = {"classifier": root / "classifier", "pretraining": root / "pretraining"}
    VideoMAEForVideoClassification(VideoMAEConfig(**TINY, id2label=dict(enumerate(LABELS)))).save_pretrained(
        out["classifier"])
    VideoMAEForPreTraining(VideoMAEConfig(**TINY, **DECODER)).save_pretrained(out["pretraining"])
    for folder in out.values():
        processor.save_pretrained(folder)
    return out


def make_clip(path: Path, label: int = 1, num_frames: int = 24, size: int = 48, seed: int = 0) -> Path:
    from videomae.data.synthetic import render_clip, write_video

    return Path(write_video(path, render_clip(label, np.random.default_rng(seed), num_frames=num_frames, size=size),
                            crf=18, pix_fmt="yuv420p"))


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):  # noqa: ANN201
        return json.loads(self.body)


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    log: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                timeout: float = 60.0, chunked: bool = False) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            if chunked:
                connection.request(method, path, body=iter([body[i:i + 65536] for i in range(0, len(body), 65536)]),
                                   headers=headers or {}, encode_chunked=True)
            else:
                connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()

    def upload(self, path: str, video: Path, headers: dict[str, str] | None = None, **kwargs) -> Answer:  # noqa: ANN003
        return self.request("POST", path, video.read_bytes(), {"Content-Type": "video/mp4", **(headers or {})},
                            **kwargs)

    def multipart(self, path: str, video: Path, headers: dict[str, str] | None = None) -> Answer:
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{video.name}\"\r\n"
                f"Content-Type: video/mp4\r\n\r\n").encode() + video.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        return self.request("POST", path, body, {"Content-Type": f"multipart/form-data; boundary={boundary}",
                                                 **(headers or {})})

    def post_json(self, path: str, document: object, headers: dict[str, str] | None = None) -> Answer:
        return self.request("POST", path, json.dumps(document).encode(),
                            {"Content-Type": "application/json", **(headers or {})})

    def metrics(self, headers: dict[str, str] | None = None) -> dict[str, float]:
        from videomae.serve.metrics import parse

        answer = self.request("GET", "/metrics", headers=headers)
        assert answer.status == 200, answer.body
        return parse(answer.body.decode())

    def wait_for(self, condition, timeout: float = 30.0, headers: dict[str, str] | None = None) -> dict[str, float]:  # noqa: ANN001
        """Poll /metrics until `condition(samples)` holds."""
        deadline = time.monotonic() + timeout
        while True:
            samples = self.metrics(headers)
            if condition(samples):
                return samples
            if time.monotonic() > deadline:
                raise AssertionError(f"metrics never met the condition; last: {samples}")
            time.sleep(0.02)


def serve_command(model: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "videomae", "serve", "--model", str(model), "--port", "0", "--device", "cpu", *args]


@contextlib.contextmanager
def running_server(model: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
                   timeout: float = 120.0) -> Iterator[Server]:
    """Start `videomae serve` on 127.0.0.1 with a port the system picks, wait until it says
    where it listens, and stop it (SIGTERM, then SIGKILL) afterwards."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    process = subprocess.Popen(serve_command(model, *args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, env=environment, stdin=subprocess.DEVNULL, cwd=cwd)
    log: list[str] = []
    port: list[int] = []
    ready = threading.Event()

    def read() -> None:  # drains stderr for the whole run, so the server never blocks on it
        for line in process.stderr:
            log.append(line)
            match = _READY.search(line)
            if match and not port:
                port.append(int(match.group(1)))
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not ready.wait(timeout) or not port:
            raise RuntimeError(f"videomae serve did not start (exit {process.poll()}):\n{''.join(log)}")
        yield Server(process, port[0], log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        reader.join(5)


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else float("nan")
