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
    """Appends one JSON object per line to `metrics.jsonl`; a no-op on processes other than
    rank 0 (`enabled=False`)."""

    def __init__(self, folder: str | os.PathLike, enabled: bool = True) -> None:
        self.path = Path(folder) / METRICS_NAME
        self.enabled = enabled

    def write(self, kind: str, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(_clean({"kind": kind, **record}), sort_keys=True) + "\n")

    def truncate_after(self, step: int) -> None:
        """Forget records past `step`: a resumed run redoes those steps and logs them again."""
        if not self.enabled or not self.path.is_file():
            return
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


def plot_curves(metrics_path: str | os.PathLike, png_path: str | os.PathLike) -> Path | None:
    """Loss (and accuracy, when there is any) against the optimizer step, as a PNG. Uses the
    Agg canvas directly, so no global matplotlib backend is changed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        logger.warning("matplotlib is not installed: no %s", png_path)
        return None

    records = read_metrics(metrics_path)
    train = [r for r in records if r.get("kind") == "train" and r.get("loss") is not None]
    if not train:
        return None
    acc_train = [r for r in train if r.get("train_acc") is not None]
    acc_eval = [r for r in records if r.get("kind") == "eval" and r.get("top1") is not None]
    panels = 2 if (acc_train or acc_eval) else 1
    fig = Figure(figsize=(6 * panels, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, panels, 1)
    ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss", lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    lr_ax = ax.twinx()
    lr_ax.plot([r["step"] for r in train], [r["lr"] for r in train], color="tab:gray", lw=0.8, ls="--", label="lr")
    lr_ax.set_ylabel("learning rate")
    lines = ax.get_lines() + lr_ax.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="upper right")
    if panels == 2:
        acc = fig.add_subplot(1, 2, 2)
        if acc_train:
            acc.plot([r["step"] for r in acc_train], [r["train_acc"] for r in acc_train], label="train acc", lw=1)
        if acc_eval:
            acc.plot([r["step"] for r in acc_eval], [r["top1"] for r in acc_eval], "o-", label="eval top-1")
            acc.plot([r["step"] for r in acc_eval], [r["top5"] for r in acc_eval], "s--", label="eval top-5")
        acc.set_xlabel("step")
        acc.set_ylabel("accuracy")
        acc.set_ylim(0, 1.02)
        acc.grid(alpha=0.3)
        acc.legend(loc="lower right")
    fig.tight_layout()
    png_path = Path(png_path)
    fig.savefig(png_path)
    return png_path


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


__all__ = ["MetricsWriter", "read_metrics", "plot_curves", "save_eval_report", "format_per_class", "METRICS_NAME"]
