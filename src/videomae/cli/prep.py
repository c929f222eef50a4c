"""`prep`: rewrite a video data set once so that training decodes it cheaply.

Raw videos keep keyframes up to 250 frames apart, so each 16-frame training clip decodes 60-190
full-size frames. The stored copy has short side 320 (never upscaled), a keyframe every 16
frames and no B-frames, constant frame rate, yuv420p H.264, no audio: on 10 s, 30 fps
natural-looking videos a clip decodes 3-5x faster on one core, and the copy takes 0.51x the
disk of 720p sources and 1.14x that of 360p ones (measured by benchmarks/prep_formats.py;
the table and the reasons for each default are in benchmarks/RESULTS.md). --frame-stride S
keeps every S-th frame: fewer, smaller files, but clips must then use a sampling rate that is
a multiple of S (training reads S from DST/prep.json).

SRC is a folder of videos (searched recursively; class folders are kept, so DST is a class
folder data set too) or a list file (`path label` lines or a CSV). DST gets the videos (as
.mp4), a list file with the same labels and paths relative to DST (videos.txt, or the source
list's name), and prep.json (the options and each run's numbers). Rerunning the same command
resumes: finished files are skipped, files whose source changed are redone, and files a
killed run left half-written are removed. Files that cannot be read are reported, one line
each, and left out of the list; the exit status is 1 only when every file failed.
"""

from __future__ import annotations

import sys

from ..prep import PrepOptions, prepare


def run(args) -> int:  # noqa: ANN001 - argparse namespace
    summary = prepare(args.src, args.dst, root=args.root, short_side=args.short_side,
                      frame_stride=args.frame_stride, keyint=args.keyint, crf=args.crf, preset=args.preset,
                      bframes=args.bframes, max_size_ratio=args.max_size_ratio,
                      workers=args.workers, progress=not args.quiet)
    total = summary.done + summary.skipped + summary.failed
    print(f"{summary.dst}: {summary.done} done, {summary.skipped} skipped (already done), {summary.failed} failed "
          f"of {total}; {summary.bytes_in / 1e6:.1f} MB in, {summary.bytes_out / 1e6:.1f} MB out "
          f"({summary.ratio:.2f}x) in {summary.seconds:.1f} s; list: {summary.list_file}")
    if total and summary.failed == total:
        print(f"videomae prep: error: none of the {total} videos could be prepared", file=sys.stderr)
        return 1
    return 0


def add_arguments(parser) -> None:  # noqa: ANN001
    d = PrepOptions()
    parser.add_argument("src", metavar="SRC", help="folder of videos (recursive) or list file (`path label` / CSV)")
    parser.add_argument("dst", metavar="DST", help="output folder (created; rerun to resume)")
    parser.add_argument("--short-side", type=int, default=d.short_side, metavar="N",
                        help=f"shorter side of the stored frames, never upscaled (default: {d.short_side}, the "
                             "recipe's resize before cropping 224)")
    parser.add_argument("--frame-stride", type=int, default=d.frame_stride, metavar="S",
                        help=f"keep every S-th frame (default: {d.frame_stride}, all: any sampling rate still "
                             "works); S must divide the sampling rate training uses")
    parser.add_argument("--keyint", type=int, default=d.keyint, metavar="K",
                        help=f"frames between keyframes (default: {d.keyint}: 4-32 decode alike, 16 stays "
                             "within 1.14x the disk of 360p sources; 1, all intra, decodes 2x faster at 2.7x)")
    parser.add_argument("--crf", type=int, default=d.crf, metavar="C",
                        help=f"x264 quality, lower is better and larger (default: {d.crf}, x264's own)")
    parser.add_argument("--preset", default=d.preset, metavar="P",
                        help=f"x264 speed preset (default: {d.preset}: size and decode speed as medium; "
                             "veryfast prepares 2x faster but 1 dB worse)")
    parser.add_argument("--bframes", type=int, default=d.bframes, metavar="B",
                        help=f"x264 B-frames (default: {d.bframes}: they save 10-15%% of the disk but delay the first "
                             "frame after every seek, and training clips seek often)")
    parser.add_argument("--max-size-ratio", type=float, default=d.max_size_ratio, metavar="R",
                        help=f"a file whose copy would exceed R times its source's size is encoded again at a "
                             f"CRF 4 higher (up to 39) (default: {d.max_size_ratio})")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="processes encoding in parallel (default: one per CPU)")
    parser.add_argument("--root", default=None, metavar="R",
                        help="folder a list's relative paths start from (default: the list's folder)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


__all__ = ["run", "add_arguments"]
