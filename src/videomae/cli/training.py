"""`pretrain`, `finetune` and `evaluate`: thin wrappers of `videomae.train`, one flag per option."""

from __future__ import annotations

import json
import sys
from typing import Any

from .options import add_option_flags, collect

_COMMANDS = {
    "pretrain": ("PretrainOptions", "pretrain"),
    "finetune": ("FinetuneOptions", "finetune"),
    "evaluate": ("EvalOptions", "evaluate"),
}


def options_class(command: str) -> type:
    from .. import train

    return getattr(train, _COMMANDS[command][0])


def add_arguments(parser, command: str) -> None:  # noqa: ANN001
    parser.add_argument("--config", metavar="FILE.json",
                        help="options from a JSON file (an options.json a run wrote works); flags override it")
    parser.set_defaults(option_names=add_option_flags(parser, options_class(command)))


def run(args, command: str) -> int:  # noqa: ANN001
    from .. import train

    entry = getattr(train, _COMMANDS[command][1])
    overrides = collect(args, args.option_names)
    try:
        result = entry(config_file=args.config, **overrides)
    except TypeError as err:  # an unknown or mistyped option in the JSON file
        raise ValueError(str(err)) from None
    print(json.dumps(_summary(command, result), indent=2, sort_keys=True))
    return 0


def _summary(command: str, result: dict[str, Any]) -> dict[str, Any]:
    """What a person wants to read at the end: where things are and the headline numbers."""
    if command == "evaluate":
        keep = ("top1", "top5", "loss", "mean_class_acc", "num_videos", "files", "skipped_videos")
        return {k: result[k] for k in keep if k in result}
    out = {k: result.get(k) for k in ("step", "epoch", "loss", "output_dir", "model_dir", "checkpoint",
                                       "stopped_early")}
    if result.get("skipped_videos"):
        out["skipped_videos"] = result["skipped_videos"]
        print(f"note: {len(result['skipped_videos'])} video(s) could not be decoded and were skipped",
              file=sys.stderr)
    if "eval" in result:
        out["eval"] = {k: result["eval"].get(k) for k in ("top1", "top5", "loss", "mean_class_acc", "num_videos")}
    return out


__all__ = ["add_arguments", "run", "options_class"]
