"""When broken videos stop a training run.

A few videos that cannot be decoded are skipped, counted and reported, and training goes on
(DESIGN.md, Reliability). Many of them mean the data is wrong, not the files (a wrong
`data_root`, an unmounted disk, a codec the decoder lacks), and a run that trains on almost
nothing must not end as if it had trained. So:

* every listed path must exist before training starts (`check_paths`);
* a first optimizer step in which every video failed stops the run at once;
* an epoch in which more than `max_failed_fraction` of the videos tried failed stops it.

A stop raises `TooManyFailedVideos` (a RuntimeError: the CLI exits with status 1) with the
reasons counted by kind, before the final model is written.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import distributed as dist_utils

logger = logging.getLogger(__name__)


class TooManyFailedVideos(RuntimeError):
    """So many videos failed to decode that training would learn from almost nothing."""


def check_paths(paths: Sequence[str], show: int = 5) -> None:
    """Raise FileNotFoundError naming how many of `paths` are not files, and the first few."""
    missing = [p for p in paths if not Path(p).is_file()]
    if not missing:
        return
    shown = ", ".join(missing[:show]) + (", ..." if len(missing) > show else "")
    raise FileNotFoundError(f"{len(missing)} of {len(paths)} video(s) do not exist, e.g. {shown}; check the list "
                            f"file's paths and data_root (relative paths are relative to it)")


def failure_kind(path: str, reason: str) -> str:
    """The kind of a failure, without the file's name or details: 'VideoDecodeError: a.mp4:
    not a readable video (Invalid data)' -> 'not a readable video'."""
    _, _, message = reason.partition(": ")  # drop the exception's type
    message = message.removeprefix(f"{path}: ")
    return re.split(r"\s*[(:;]", message or reason, maxsplit=1)[0].strip() or reason


def count_kinds(failures: dict[str, str]) -> dict[str, int]:
    """How many failures of each kind, most frequent first."""
    return dict(Counter(failure_kind(p, r) for p, r in failures.items()).most_common())


def _describe(kinds: dict[str, int]) -> str:
    return ", ".join(f"{kind} ({n})" for kind, n in kinds.items())


@dataclass
class FailureLedger:
    """Videos tried and failed in the current epoch on this process, and the rules that stop
    the run. The loop `add`s every batch and calls `after_step` with each step's clip count
    summed over processes; the runner calls `close_epoch` at the end of each epoch (on every
    process: it gathers)."""

    max_fraction: float = 0.5
    tried: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # path -> first reason
    stepped: bool = False  # an optimizer step has been checked in this run

    def add(self, batch: dict[str, Any]) -> None:
        self.tried += batch["num_videos"]
        for path, reason in batch.get("failures", []):
            self.failed.setdefault(path, reason)

    def after_step(self, clips: float) -> None:
        """`clips`: the step's clips over every process and micro-batch. No clip at the run's
        first step means every video in it failed: stop now rather than after an epoch."""
        if not self.stepped and clips == 0:
            _, failed = self.gather()  # every process gets here: `clips` is their sum
            example = next(iter(failed.values()), "no reason recorded")
            raise TooManyFailedVideos(f"every video of the first batch ({len(failed)}) failed to decode: "
                                      f"{_describe(count_kinds(failed))}; e.g. {example}. Training stopped; no model "
                                      f"was written")
        self.stepped = True

    def close_epoch(self, where: str) -> dict[str, str]:
        """Gather this epoch's failures from every process, report them, start the next epoch,
        and raise if more than `max_fraction` of the videos tried failed. Returns the failures
        (path -> reason) of every process."""
        tried, failed = self.gather()
        self.failed, self.tried = {}, 0
        if not failed:
            return failed
        kinds = count_kinds(failed)
        logger.warning("%s: skipped %d of %d video(s) that could not be decoded (%s):", where, len(failed), tried,
                       _describe(kinds))
        for path, reason in failed.items():
            logger.warning("  %s: %s", path, reason)
        fraction = len(failed) / max(tried, 1)
        if fraction > self.max_fraction:
            raise TooManyFailedVideos(f"{where}: {len(failed)} of {tried} video(s) failed to decode ({fraction:.0%}, "
                                      f"more than max_failed_fraction {self.max_fraction:.0%}): {_describe(kinds)}; "
                                      f"e.g. {next(iter(failed.values()))}. Training stopped; no final model was "
                                      f"written")
        return failed

    def gather(self) -> tuple[int, dict[str, str]]:
        """Videos tried and failed on every process; each failed video once (path -> first
        reason), sorted by path."""
        tried, merged = 0, {}
        for part_tried, part_failed in dist_utils.all_gather_objects((self.tried, dict(self.failed))):
            tried += part_tried
            for path, reason in part_failed.items():
                merged.setdefault(path, reason)
        return tried, dict(sorted(merged.items()))


__all__ = ["TooManyFailedVideos", "FailureLedger", "check_paths", "failure_kind", "count_kinds"]
