"""The `videomae` command (also `python -m videomae`).

    videomae classify VIDEO... --model MCG-NJU/videomae-base-finetuned-kinetics
    videomae embed videos/ --model runs/pretrain/model --out features.npy
    videomae reconstruct clip.mp4 --model runs/pretrain/model --out rec.png --gif rec.gif
    videomae convert checkpoint.pth converted/
    videomae export runs/finetune/model --format onnx --out model.onnx
    videomae prep videos/ prepared/
    videomae pretrain --data videos/ --model small --epochs 800
    videomae finetune --data train.txt --eval-data val.txt --init-from runs/pretrain/model
    videomae evaluate --model runs/finetune/model --data test.txt
    videomae probe --model runs/pretrain/model --train-data train.txt --eval-data val.txt
    videomae serve --model runs/finetune/model --port 8000
    videomae demo

Mistakes a user can make (a missing file, a bad model path, a hub id while offline, a video
that cannot be decoded) end with one line on stderr and a non-zero exit status; `--debug`
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .. import __version__

_EPILOG = "Run `videomae COMMAND --help` for a command's options."


class _Parser(argparse.ArgumentParser):
    """argparse's parser, but a usage error is one line (not the whole usage, which for the
    training commands is long), exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from . import convert, export, inference, prep, probe, serve, training
    from .. import demo

    parser = _Parser(prog="videomae", description="VideoMAE: classify, embed and reconstruct videos; pretrain, "
                     "fine-tune and evaluate models; convert original checkpoints; prepare data sets; run the demo.",
                     epilog=_EPILOG)
    parser.add_argument("--version", action="version", version=f"videomae {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("classify", parents=[common], help="top-k labels of videos",
                       description="Top-k labels with scores for each video; the softmax of several clips per video "
                                   "is averaged.")
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files or folders of videos")
    inference.add_model_arguments(p)
    p.add_argument("--top-k", type=int, default=5, metavar="K", help="labels to show per video (default: 5)")
    p.add_argument("--format", choices=("table", "jsonl"), default="table",
                   help="a table, or one JSON object per video (default: table)")
    p.add_argument("--labels", metavar="FILE", help="class names, one a line (line i = class i), shown instead of "
                                                     "the names in the model's config.json")
    p.set_defaults(run=inference.classify)

    p = sub.add_parser("embed", parents=[common], help="one feature vector per video",
                       description="One feature vector per video: the mean of the encoder's tokens (for a classifier, "
                                   "its pooled fc_norm feature), averaged over clips; or one row per clip (.parquet, "
                                   "and --engine ray on a Ray cluster).")
    p.add_argument("videos", nargs="+", metavar="VIDEO_FOLDER_OR_LIST",
                   help="video files, folders (searched recursively), or lists of videos: a .txt / .csv list file "
                        "(`path [label]` lines) or a .parquet file with a path column")
    inference.add_model_arguments(p)
    p.add_argument("--out", required=True, metavar="FILE",
                   help="FILE.npy (with FILE.txt: the videos in row order) or FILE.npz (arrays features and names): "
                        "one vector per video, the mean over clips; or FILE.parquet: one row per clip with its times "
                        "and an error column, resumed when rerun (needs pyarrow: pip install 'videomae[features]'); "
                        "with --engine ray, a folder of Parquet shards of those rows")
    inference.add_engine_arguments(p)
    p.add_argument("--features", default="auto", choices=("auto", "mean", "pooled", "logits", "tokens"),
                   help="mean: of the encoder's tokens; pooled: a classifier's fc_norm feature; logits; tokens: the "
                        "(T', H', W', D) token grid in float16 (.parquet only); auto: pooled for a classifier, "
                        "else mean (default: auto)")
    p.set_defaults(run=inference.embed)

    p = sub.add_parser("reconstruct", parents=[common], help="picture of a masked video and its reconstruction",
                       description="Mask a clip with tube masking, reconstruct it with a pretraining checkpoint, and "
                                   "show original, masked input and reconstruction frame by frame.")
    p.add_argument("video", metavar="VIDEO")
    inference.add_model_arguments(p, batch=False)
    p.add_argument("--out", required=True, metavar="FILE.png", help="the grid: a row each, a column per frame")
    p.add_argument("--gif", metavar="FILE.gif", help="also an animated GIF (original | masked | reconstruction)")
    p.add_argument("--mp4", metavar="FILE.mp4", help="also an H.264 video of the same")
    p.add_argument("--mask-ratio", type=float, default=0.9, metavar="X", help="fraction of tubelets hidden "
                                                                              "(default: 0.9)")
    p.add_argument("--seed", type=int, default=0, help="seed of the mask (default: 0)")
    p.add_argument("--scale", type=int, default=None, metavar="N",
                   help="enlarge frames N times (default: enough to make small frames readable)")
    p.add_argument("--fps", type=float, default=4.0, help="frames per second of the animation (default: 4)")
    p.set_defaults(run=inference.reconstruct)

    p = sub.add_parser("convert", parents=[common], help="original .pth checkpoint -> transformers-format folder",
                       description=convert.__doc__)
    convert.add_arguments(p)
    p.set_defaults(run=convert.convert)

    p = sub.add_parser("export", parents=[common], help="a model to one ONNX or torch.export file",
                       description=export.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    export.add_arguments(p)
    p.set_defaults(run=export.run)

    p = sub.add_parser("prep", parents=[common], help="rewrite a video data set once so that training decodes it fast",
                       description=prep.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    prep.add_arguments(p)
    p.set_defaults(run=prep.run)

    for name, text in (("pretrain", "self-supervised pretraining (masked video reconstruction)"),
                       ("finetune", "supervised fine-tuning for classification"),
                       ("evaluate", "multi-view evaluation of a classifier")):
        p = sub.add_parser(name, parents=[common], help=text, description=f"{text[0].upper()}{text[1:]}, the paper's "
                           "recipe. Priority: defaults < --config FILE.json < flags. Runs under torchrun too.")
        training.add_arguments(p, name)
        p.set_defaults(run=lambda args, name=name: training.run(args, name))

    p = sub.add_parser("probe", parents=[common], help="linear probe and k-NN of a frozen encoder's features",
                       description=probe.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    probe.add_arguments(p)
    p.set_defaults(run=probe.run)

    p = sub.add_parser("serve", parents=[common], help="an HTTP service and a web page for a model",
                       description="Serve a model over HTTP: POST /v1/classify, /v1/embed, /v1/reconstruct (a video "
                                   "upload, or JSON naming a file under --data-root), GET /v1/model, /healthz, "
                                   "/metrics, and a web page at /. Requests of many clients share model batches. "
                                   "Needs the serve extra: pip install 'videomae[serve]'.")
    serve.add_arguments(p)
    p.set_defaults(run=serve.run)

    p = sub.add_parser("demo", parents=[common], help="the paper's finding on a synthetic data set, offline",
                       description=demo.DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_arguments(p)
    p.set_defaults(run=demo.main)
    return parser


_CHATTY = {"pretrain", "finetune", "evaluate", "demo", "serve"}  # their progress is logged at INFO


def _setup_logging(debug: bool, command: str) -> None:
    level = logging.DEBUG if debug else logging.INFO if command in _CHATTY else logging.WARNING
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    # huggingface_hub prints through a handler of its own; passed on to ours as well, each of
    # its lines (retries, warnings) came out twice.
    from huggingface_hub.utils import logging as hub_logging

    hub_logging.disable_propagation()
    if not debug:  # third-party chatter
        for name in ("urllib3", "huggingface_hub", "filelock", "matplotlib", "PIL"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _one_line(err: BaseException) -> str:
    return " ".join((str(err).strip() or type(err).__name__).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `videomae` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.debug, args.command)
    try:
        status = args.run(args)
    except KeyboardInterrupt:
        print(f"videomae {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError) as err:
        if args.debug:
            raise
        # A RuntimeError is a torch or training failure (out of memory, a diverged loss), or a
        # bug: one line as well, with the way to see where it came from.
        hint = " (run with --debug for the traceback)" if not isinstance(err, (ValueError, OSError)) else ""
        print(f"videomae {args.command}: error: {_one_line(err)}{hint}", file=sys.stderr)
        return 1
    return int(status or 0)


__all__ = ["main", "build_parser"]
