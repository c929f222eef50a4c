"""Where embedding loses time against bare decoding: the same clips, the same worker count, one
layer of the library's path added at a time.

On an H200 with 16 cores (benchmarks/RESULTS.md, data path run 6) `embed_videos` with PyAV in 15
workers ran at 55-59 videos/s while 15 bare processes decoded the trainer's clips of the same
files at 101. This script separates the layers, each on embed's own clip (the middle one):

  pool-decode       `read_video` of the clip (resized in the decoder) in a warmed process pool
  pool-items        `VideoClips` items (adds the processor's crop), pool, no tensors sent back
  loader-ordered    `decoded_videos`: DataLoader workers, items in input order, tensors sent back
  loader-unordered  the same, items as they finish (what `run_videos` uses now)
  loader-pinned     the same, pinned for the GPU by DataLoader's pinning thread (CUDA only)
  loader-upload     the same, not pinned: each item copied to the GPU as it arrives (CUDA only;
                    what `run_videos` does now)
  embed             `embed_videos` with the model loaded (a random ViT-B on CUDA; tiny on the CPU)

    python benchmarks/embed_gap.py --dir D [--repeat 3] [--workers 15] [--results R.json]
    python benchmarks/embed_gap.py --dir D --quick   # the CPU check: tiny model, few files

D holds videos (for example `benchmarks/pipeline.py generate`'s D/raw).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from videomae import VideoMAEConfig, VideoMAEModel  # noqa: E402
from videomae.data.datasets import find_videos  # noqa: E402
from videomae.pipeline import VideoClips, clip_indices, decoded_videos, embed_videos  # noqa: E402
from videomae.processing import VideoMAEImageProcessor  # noqa: E402
from videomae.video import read_video  # noqa: E402

CLIP_LEN, RATE = 16, 4
TINY = dict(image_size=32, patch_size=8, num_frames=4, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=64)


def _decode(path: Path, short_side: int) -> int:
    torch.set_num_threads(1)
    return read_video(path, lambda n: clip_indices(n, CLIP_LEN, RATE, 1).reshape(-1), resize=short_side).shape[0]


def _item(dataset: VideoClips, index: int) -> int:
    torch.set_num_threads(1)
    video = dataset[index]
    return 0 if video.clips is None else video.clips.shape[0]


def _upload(video) -> torch.Tensor | None:  # noqa: ANN001
    return None if video.clips is None else video.clips.cuda()


def timed(label: str, run, count: int) -> dict:  # noqa: ANN001
    """videos/s of `run()` (which returns an iterable of per-video results) and when the first came."""
    started = time.perf_counter()
    first = None
    for _ in run():
        first = first if first is not None else time.perf_counter() - started
    seconds = time.perf_counter() - started
    row = {"case": label, "videos": count, "videos_per_s": count / seconds, "seconds": seconds, "first_s": first}
    print(json.dumps(row), flush=True)
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="a folder of videos")
    parser.add_argument("--repeat", type=int, default=1, help="each video this many times")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--quick", action="store_true", help="tiny model, at most 8 files (checks the script)")
    parser.add_argument("--results", type=Path)
    args = parser.parse_args(argv)

    paths = find_videos(Path(args.dir))[: 8 if args.quick else None] * args.repeat
    cuda = torch.cuda.is_available() and not args.quick
    config = VideoMAEConfig(**TINY) if args.quick else VideoMAEConfig()
    processor = VideoMAEImageProcessor(size={"shortest_edge": config.image_size},
                                       crop_size={"height": config.image_size, "width": config.image_size})
    dataset = VideoClips(paths, processor, CLIP_LEN, RATE, 1, decoder_resize=True)
    head = {"device": torch.cuda.get_device_name() if cuda else platform.processor() or "cpu",
            "cpus": os.cpu_count(), "torch": torch.__version__, "workers": args.workers, "videos": len(paths)}
    print(json.dumps(head), flush=True)
    rows = []
    with ProcessPoolExecutor(args.workers) as pool:
        list(pool.map(_decode, paths[: 2 * args.workers], [config.image_size] * 2 * args.workers))  # warm
        rows.append(timed("pool-decode", lambda: pool.map(_decode, paths, [config.image_size] * len(paths),
                                                          chunksize=2), len(paths)))
        rows.append(timed("pool-items", lambda: pool.map(_item, [dataset] * len(paths), range(len(paths)),
                                                         chunksize=2), len(paths)))
    rows.append(timed("loader-ordered", lambda: decoded_videos(dataset, args.workers), len(paths)))
    rows.append(timed("loader-unordered", lambda: decoded_videos(dataset, args.workers, ordered=False), len(paths)))
    if cuda:
        rows.append(timed("loader-pinned", lambda: decoded_videos(dataset, args.workers, pin_memory=True,
                                                                  ordered=False), len(paths)))
        rows.append(timed("loader-upload", lambda: map(_upload, decoded_videos(dataset, args.workers, ordered=False)),
                          len(paths)))
    device = torch.device("cuda" if cuda else "cpu")
    model = VideoMAEModel(config).to(device).eval()
    options = dict(num_clips=1, batch_size=32, num_workers=args.workers, decoder_resize=True,
                   dtype="bfloat16" if cuda else "float32")
    list(embed_videos(paths[:8], model, processor, **{**options, "num_workers": 0}))  # warm the model
    rows.append(timed("embed", lambda: embed_videos(paths, model, processor, **options), len(paths)))
    limit = rows[0]["videos_per_s"]
    for row in rows:
        row.update(head, of_pool_decode=row["videos_per_s"] / limit)
    print("\n".join(f"{r['case']:<18} {r['videos_per_s']:8.1f} videos/s  {r['of_pool_decode']:5.0%}" for r in rows))
    if args.results:
        args.results.write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
