"""Small generated videos and tiny model configs for the training and data tests."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

# A model small enough to train for dozens of steps in a second or two on a CPU.
TINY_CONFIG = dict(
    image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=2,
    num_attention_heads=2, intermediate_size=64, decoder_hidden_size=32, decoder_num_hidden_layers=1,
    decoder_num_attention_heads=2, decoder_intermediate_size=64,
)

# Options every tiny training run shares: CPU, in-process loading, no bars, fp32.
# a tiny model at 64x64 for the GPU decoders' training tests (frames resized on the GPU)
GPU_DECODING = dict(model="small", config_overrides=dict(
    image_size=64, patch_size=16, num_frames=4, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
    intermediate_size=128, decoder_hidden_size=32, decoder_num_hidden_layers=1, decoder_num_attention_heads=2,
    decoder_intermediate_size=64), lr=1e-3, warmup_steps=1, progress=False, device="cuda", log_every=1)
FAST = dict(model="small", config_overrides=TINY_CONFIG, device="cpu", num_workers=0, progress=False,
            precision="fp32", sampling_rate=2, short_side=40, log_every=1)


def write_video(path: str | Path, frames: np.ndarray, fps: int = 8, codec: str = "libx264") -> Path:
    """(T, H, W, 3) uint8 RGB -> an .mp4 file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t, h, w, _ = frames.shape
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "18", "preset": "ultrafast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def moving_bar(direction: int, rng: np.random.Generator, num_frames: int = 16, size: int = 32) -> np.ndarray:
    """A bright full-height bar gliding right (direction +1) or left (-1) over a noisy dark
    background: (T, H, W, 3) uint8. Only the motion tells the classes apart, and any crop
    of a clip still sees it."""
    side = size // 4
    frames = (rng.random((num_frames, size, size, 3)) * 60).astype(np.uint8)
    travel = size - side
    colour = rng.integers(150, 256, size=3).astype(np.uint8)
    for i in range(num_frames):
        progress = i / max(num_frames - 1, 1)
        x = int(round(progress * travel)) if direction > 0 else int(round((1 - progress) * travel))
        frames[i, :, x:x + side] = colour
    return frames


def make_motion_videos(root: str | Path, per_class: int = 6, num_frames: int = 16, size: int = 32,
                       seed: int = 0, codec: str = "libx264") -> Path:
    """`root/{left,right}/NN.mp4` class folders plus `root/list.txt` (`relative/path label`)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    lines = []
    for label, (name, direction) in enumerate((("left", -1), ("right", 1))):
        for i in range(per_class):
            rel = f"{name}/{i:02d}.mp4"
            write_video(root / rel, moving_bar(direction, rng, num_frames, size), codec=codec)
            lines.append(f"{rel} {label}")
    (root / "list.txt").write_text("\n".join(lines) + "\n")
    return root


def make_corrupt_videos(folder: str | Path, valid: Path) -> dict[str, Path]:
    """An empty file, random bytes and a truncated copy of `valid`, each named .mp4."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    noise = folder / "noise.mp4"
    noise.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    truncated = folder / "truncated.mp4"
    data = valid.read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    return {"empty": empty, "noise": noise, "truncated": truncated}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_job(job_file: str) -> None:
    """One process of a multi-process test run (started by torchrun): run the entry points the
    job names with its options; rank 0 writes their JSON results."""
    import json
    import os

    import torch

    from videomae.train import evaluate, pretrain

    torch.set_num_threads(1)
    job = json.loads(Path(job_file).read_text())
    results = {}
    if "pretrain" in job:
        results["pretrain"] = pretrain(**job["pretrain"])
    if "evaluate" in job:
        results["evaluate"] = evaluate(**job["evaluate"])
    if os.environ.get("RANK", "0") == "0":
        Path(job["result"]).write_text(json.dumps(results, default=str))


if __name__ == "__main__":
    import sys

    _run_job(sys.argv[1])


@pytest.fixture(autouse=True)
def one_thread():
    """Training tests pin torch to one thread: on a shared 2-core machine two threads per
    process make tiny steps many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
