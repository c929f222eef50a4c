"""A small video data set made on the spot, whose classes are motions, not appearances.

Each clip shows one shape gliding over a background. The class is the direction of the motion
(left, right, up, down); shape, colour, size, speed, start position and background are random,
so a single frame says nothing about the class, as in Something-Something.

Backgrounds are "plain" (one random colour; the default) or "texture" (random colour blobs, a
grating and sensor noise). Masked autoencoding learns from what it can predict: on plain
backgrounds the pixels worth predicting are the moving shapes, so a few minutes of pretraining
learn motion; on textures the unpredictable texture dominates the loss and they do not (the
pretraining loss stays near 1 and the features are no better than random ones).
The clips are written as real H.264 files with lists in the original `path label` format, so
a model trained on them goes through the whole pipeline: decode, sample, augment, model.

Everything is a function of the seed: the same seed writes the same pixels.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

CLASSES: tuple[str, ...] = ("left", "right", "up", "down")
# Unit vector (dx, dy) of each class, in image coordinates (y grows downwards).
_DIRECTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}
_SHAPES = ("disc", "square", "diamond", "ring", "cross")
SPLITS = ("unlabeled", "train", "val", "test")
BACKGROUNDS = ("plain", "texture")


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate. Counts are clips per class; `unlabeled` clips carry no label in the
    pretraining list (their class is still drawn uniformly, so the pool is balanced)."""

    unlabeled: int = 200
    train: int = 24
    val: int = 8
    test: int = 50
    num_frames: int = 24
    size: int = 32
    fps: int = 16
    background: str = "plain"
    # Shape radius and distance travelled over the clip, as fractions of the frame side. Large
    # shapes cover many tokens, so masked-video pretraining learns their motion quickly.
    radius: tuple[float, float] = (0.25, 0.35)
    travel: tuple[float, float] = (0.6, 1.0)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {BACKGROUNDS}, got {self.background!r}")
        if self.size < 16 or self.size % 2:
            raise ValueError(f"size must be an even number of pixels >= 16 (H.264 needs even sides), got {self.size}")
        if self.num_frames < 2:
            raise ValueError(f"num_frames must be at least 2, got {self.num_frames}")
        for name in ("radius", "travel"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ValueError(f"{name} must be a (low, high) range with 0 < low <= high, got {(low, high)}")
        for split in SPLITS:
            if getattr(self, split) < 0:
                raise ValueError(f"{split} must be >= 0 clips per class, got {getattr(self, split)}")


# --------------------------------------------------------------------------- rendering
def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random coloured background (size, size, 3) in [0, 1]: smooth blobs plus a grating."""
    coarse = rng.random((5, 5, 3))
    # Bilinear upsampling of a 5x5 grid gives smooth colour blobs.
    idx = np.linspace(0, 4, size)
    i0 = np.floor(idx).astype(int).clip(0, 3)
    frac = idx - i0
    rows = coarse[i0] * (1 - frac)[:, None, None] + coarse[i0 + 1] * frac[:, None, None]  # (size, 5, 3)
    blobs = rows[:, i0] * (1 - frac)[None, :, None] + rows[:, i0 + 1] * frac[None, :, None]  # (size, size, 3)
    yy, xx = np.mgrid[0:size, 0:size] / size
    angle = rng.uniform(0, math.pi)
    freq = rng.uniform(3, 9)
    grating = 0.5 + 0.5 * np.sin(2 * math.pi * freq * (xx * math.cos(angle) + yy * math.sin(angle)))
    tint = rng.random(3)
    background = 0.65 * blobs + 0.35 * grating[..., None] * tint
    return 0.15 + 0.7 * background  # keep away from the extremes so shapes stand out


def _coverage(shape: str, dx: np.ndarray, dy: np.ndarray, radius: float) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of a shape centred at the origin, from a signed
    distance (negative inside), so sub-pixel motion is visible."""
    if shape == "disc":
        sdf = np.hypot(dx, dy) - radius
    elif shape == "square":
        sdf = np.maximum(np.abs(dx), np.abs(dy)) - radius * 0.85
    elif shape == "diamond":
        sdf = (np.abs(dx) + np.abs(dy)) / math.sqrt(2) - radius * 0.8
    elif shape == "ring":
        sdf = np.abs(np.hypot(dx, dy) - radius * 0.75) - radius * 0.3
    else:  # cross
        thin = radius * 0.35
        bar_h = np.maximum(np.abs(dx) - radius, np.abs(dy) - thin)
        bar_v = np.maximum(np.abs(dx) - thin, np.abs(dy) - radius)
        sdf = np.minimum(bar_h, bar_v)
    return np.clip(0.5 - sdf, 0.0, 1.0)


def render_clip(
    label: int, rng: np.random.Generator, num_frames: int = 24, size: int = 32, background: str = "plain",
    radius: tuple[float, float] = (0.25, 0.35), travel: tuple[float, float] = (0.6, 1.0),
) -> np.ndarray:
    """One clip of class `label`: (num_frames, size, size, 3) uint8.

    The shape, of radius `radius` (fractions of the side), travels `travel` of the frame along
    its class's direction from a uniformly random start. The frame wraps around (a shape
    leaving on the right comes back on the left), so the shape's position in any frame, first,
    middle or last, is uniform over the frame for every class: only the order of the frames
    tells the class.
    """
    if not 0 <= label < len(CLASSES):
        raise ValueError(f"label must be in [0, {len(CLASSES)}), got {label}")
    if background == "plain":
        backdrop = np.broadcast_to(0.15 + 0.7 * rng.random(3), (size, size, 3))
    elif background == "texture":
        backdrop = _texture(rng, size)
    else:
        raise ValueError(f"background must be one of {BACKGROUNDS}, got {background!r}")
    shape = _SHAPES[rng.integers(len(_SHAPES))]
    radius_px = rng.uniform(*radius) * size
    colour = rng.random(3)
    # Contrast with the background: push the colour towards the far end of each channel.
    colour = np.where(backdrop.mean(axis=(0, 1)) > 0.5, colour * 0.35, 0.65 + colour * 0.35)
    distance = rng.uniform(*travel) * size
    ux, uy = _DIRECTIONS[CLASSES[label]]
    x0, y0 = rng.uniform(0, size, 2)
    # A little jitter across the motion so paths are not perfectly straight.
    wobble = rng.uniform(0, 1.5) * np.sin(np.linspace(0, rng.uniform(1, 3) * math.pi, num_frames) + rng.uniform(0, 6))
    progress = np.linspace(0.0, 1.0, num_frames)
    cx = x0 + ux * distance * progress + uy * wobble  # (T,)
    cy = y0 + uy * distance * progress + ux * wobble
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    # Offsets on a torus: the shortest way round from each pixel to the shape's centre.
    dx = (xx[None] - cx[:, None, None] + size / 2) % size - size / 2  # (T, H, W)
    dy = (yy[None] - cy[:, None, None] + size / 2) % size - size / 2
    alpha = _coverage(shape, dx, dy, radius_px)  # (T, H, W)
    frames = backdrop[None] * (1 - alpha[..., None]) + colour * alpha[..., None]  # (T, H, W, 3)
    if background == "texture":
        frames = frames + rng.normal(0, 0.015, frames.shape)  # sensor noise: no two frames are equal
    return (frames.clip(0, 1) * 255 + 0.5).astype(np.uint8)


# --------------------------------------------------------------------------- files
def write_video(
    path: str | Path, frames: np.ndarray, fps: int = 16, crf: int = 0, pix_fmt: str = "yuv444p"
) -> Path:
    """Write (T, H, W, 3) uint8 RGB frames as an H.264 mp4 (even sides).

    The defaults, `crf=0` and full-resolution colour (`yuv444p`), decode to within one level of
    the input. Both matter for masked-video pretraining on these small clips: lossy settings
    leave faint noise on the plain backgrounds, which the normalised-pixel loss (each patch
    scaled to unit variance) blows up into targets nothing can predict, and `yuv420p` halves
    the colour resolution, smearing shapes a few pixels wide. Use `crf=18, pix_fmt="yuv420p"`
    for files any player opens.
    """
    import av

    path = Path(path)
    t, h, w, c = frames.shape
    if c != 3 or h % 2 or w % 2:
        raise ValueError(f"{path}: frames must be (T, H, W, 3) with even H and W, got {frames.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        stream.options = {"crf": str(crf), "preset": "veryfast", "tune": "zerolatency"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@dataclass(frozen=True)
class SyntheticDataset:
    """Where a generated data set lies. The lists hold `relative/path.mp4 label` lines, paths
    relative to `root`; `pretrain_list` has every unlabeled and train clip with label -1."""

    root: Path
    classes: tuple[str, ...]

    def list_path(self, split: str) -> Path:
        return self.root / f"{split}.txt"

    @property
    def labels_path(self) -> Path:
        return self.root / "labels.txt"

    @property
    def pretrain_list(self) -> Path:
        return self.root / "pretrain.txt"


def clip_seed(seed: int, split: str, index: int) -> np.random.SeedSequence:
    """Each clip has its own random stream, so a clip does not depend on how many others
    were made before it (growing a split leaves the existing clips unchanged)."""
    return np.random.SeedSequence([seed, SPLITS.index(split), index])


def generate(root: str | Path, spec: SyntheticSpec = SyntheticSpec(), progress: bool = False) -> SyntheticDataset:
    """Write the data set under `root` (made if needed) and return where its lists are.

    Layout: `root/{split}/{index:05d}.mp4`, `root/{split}.txt` (`path label` lines),
    `root/pretrain.txt` (unlabeled + train, label -1), `root/labels.txt` (one class name a
    line, line i = label i) and `root/spec.json`. A folder already holding the same spec is
    reused as it is.
    """
    root = Path(root)
    dataset = SyntheticDataset(root=root, classes=CLASSES)
    spec_path = root / "spec.json"
    wanted = json.dumps(asdict(spec), sort_keys=True)
    if spec_path.is_file() and spec_path.read_text() == wanted and all(
        dataset.list_path(s).is_file() for s in SPLITS
    ):
        return dataset
    root.mkdir(parents=True, exist_ok=True)
    jobs = [(split, i) for split in SPLITS for i in range(getattr(spec, split) * len(CLASSES))]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="generating clips", unit="clip")
    lines: dict[str, list[str]] = {split: [] for split in SPLITS}
    for split, i in jobs:
        label = i % len(CLASSES)  # balanced, interleaved classes
        rng = np.random.default_rng(clip_seed(spec.seed, split, i))
        frames = render_clip(label, rng, spec.num_frames, spec.size, spec.background, spec.radius, spec.travel)
        rel = f"{split}/{i:05d}.mp4"
        write_video(root / rel, frames, spec.fps)
        lines[split].append(f"{rel} {label}")
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    for split in SPLITS:
        dataset.list_path(split).write_text("".join(line + "\n" for line in lines[split]))
    pretrain = [line.rsplit(" ", 1)[0] + " -1" for line in lines["unlabeled"] + lines["train"]]
    dataset.pretrain_list.write_text("".join(line + "\n" for line in pretrain))
    dataset.labels_path.write_text("".join(name + "\n" for name in CLASSES))
    spec_path.write_text(wanted)
    return dataset


__all__ = ["CLASSES", "BACKGROUNDS", "SyntheticSpec", "SyntheticDataset", "render_clip", "write_video", "generate",
           "clip_seed"]
