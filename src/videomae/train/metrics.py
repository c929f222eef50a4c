"""Metrics out: a JSON-lines log, curves as a PNG, and the evaluation reports."""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

METRICS_NAME = "metrics.jsonl"


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN / inf to None."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsWriter:
    """Appends one JSON object per line to `metrics.jsonl`, and the numbers of each record to
    TensorBoard (`tensorboard/` beside it) when `tensorboard` is installed; a no-op on processes
    other than rank 0 (`enabled=False`). `close()` flushes the TensorBoard file."""

    def __init__(self, folder: str | os.PathLike, enabled: bool = True) -> None:
        self.path = Path(folder) / METRICS_NAME
        self.enabled = enabled
        self._board: Any = None  # opened at the first record, so a run that logs nothing leaves no file
        self._purge_step: int | None = None

    def write(self, kind: str, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(_clean({"kind": kind, **record}), sort_keys=True) + "\n")
        board = self._tensorboard()
        step = record.get("step")
        if board is None or not isinstance(step, int):
            return
        for key, value in record.items():
            if key != "step" and isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
                if math.isfinite(float(value)):
                    board.add_scalar(f"{kind}/{key}", float(value), global_step=step)

    def _tensorboard(self) -> Any:
        if self._board is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional (the `tensorboard` extra)
                self._board = False
                return None
            # A resumed run redoes the steps after its checkpoint: TensorBoard forgets them too.
            self._board = SummaryWriter(str(self.path.parent / "tensorboard"), purge_step=self._purge_step)
        return self._board or None

    def close(self) -> None:
        if self._board:
            self._board.close()
        self._board = None

    def truncate_after(self, step: int) -> None:
        """Forget records past `step`: a resumed run redoes those steps and logs them again."""
        if not self.enabled or not self.path.is_file():
            return
        self._purge_step = step + 1
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line) if line.strip() else None
            except json.JSONDecodeError:  # a line cut short by a kill or a full disk
                logger.warning("%s: dropping a damaged line: %.80s", self.path, line)
                continue
            if isinstance(record, dict) and (record.get("step") or 0) <= step:
                kept.append(line)
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        os.replace(tmp, self.path)


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_NAME
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_metrics(metrics_path: str | os.PathLike, png_path: str | os.PathLike) -> Path | None:
    """A run's curves as a PNG: training loss, learning rate and (when there is any) accuracy
    against the optimizer step. None when there is nothing to plot or no matplotlib."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        logger.warning("matplotlib is not installed: no %s", png_path)
        return None
    from ..visualize import plot_curves

    records = read_metrics(metrics_path)
    train = [r for r in records if r.get("kind") == "train" and r.get("loss") is not None]
    if not train:
        return None
    evals = [r for r in records if r.get("kind") == "eval" and r.get("top1") is not None]

    def series(rows: list[dict[str, Any]], key: str) -> list[tuple[float, float]]:
        return [(r["step"], r[key]) for r in rows if r.get(key) is not None]

    panels = {"loss": {"train loss": series(train, "loss")}, "learning rate": {"lr": series(train, "lr")},
              "accuracy": {"train acc": series(train, "train_acc"), "eval top-1": series(evals, "top1"),
                           "eval top-5": series(evals, "top5")}}
    return plot_curves(panels, png_path, ylim={"accuracy": (0.0, 1.02)})


def save_eval_report(folder: str | os.PathLike, metrics: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Write `{prefix}metrics.json`, `{prefix}per_class.json` and the confusion matrix as
    `{prefix}confusion_matrix.npy` and `.json`; return the files written."""
    folder = Path(folder)
    confusion = np.asarray(metrics["confusion"])
    files = {
        "metrics": folder / f"{prefix}metrics.json",
        "per_class": folder / f"{prefix}per_class.json",
        "confusion_npy": folder / f"{prefix}confusion_matrix.npy",
        "confusion_json": folder / f"{prefix}confusion_matrix.json",
    }
    summary = {k: v for k, v in metrics.items() if k not in ("per_class", "confusion")}
    files["metrics"].write_text(json.dumps(_clean(summary), indent=2, sort_keys=True) + "\n")
    files["per_class"].write_text(json.dumps(_clean(metrics["per_class"]), indent=2) + "\n")
    np.save(files["confusion_npy"], confusion)
    names = [p["name"] for p in metrics["per_class"]]
    files["confusion_json"].write_text(json.dumps({"labels": names, "matrix": confusion.tolist(),
                                                   "rows": "true class", "columns": "predicted class"}) + "\n")
    return {k: str(v) for k, v in files.items()}


def format_per_class(metrics: dict[str, Any], limit: int = 50) -> str:
    """A text table of per-class accuracy and support (worst classes first)."""
    rows = sorted(metrics["per_class"], key=lambda p: (p["accuracy"] is None, p["accuracy"] or 0.0))
    width = max([len(p["name"]) for p in rows] + [5])
    lines = [f"{'class':<{width}}  accuracy  support"]
    for p in rows[:limit]:
        acc = "   -    " if p["accuracy"] is None else f"{p['accuracy']:8.3f}"
        lines.append(f"{p['name']:<{width}}  {acc}  {p['support']:7d}")
    if len(rows) > limit:
        lines.append(f"... {len(rows) - limit} more classes in per_class.json")
    return "\n".join(lines)


__all__ = ["MetricsWriter", "read_metrics", "plot_metrics", "save_eval_report", "format_per_class", "METRICS_NAME"]
