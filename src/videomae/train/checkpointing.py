"""Training checkpoints: written atomically, the last K kept, resumable exactly.

Layout under the output folder::

    checkpoint-00000200/
        training_state.pt   model, optimizer, scaler, step, epoch, data position, RNG states,
                            config and options (loadable with torch.load(weights_only=True))
        model/              the model alone, `save_pretrained` format: from_pretrained reads it

A checkpoint is first written to a hidden temporary folder and renamed into place, so a kill
at any moment leaves either the previous checkpoint or the new one, never half of one. What a
kill leaves behind (the hidden folder) is removed by the next run, which says so; a newest
checkpoint that cannot be read (a disk error, a partial copy) is skipped by `resume=True` for
the one before it. A write that fails (a full disk) raises an OSError that names the
checkpoint and the one still intact.
"""

from __future__ import annotations

import logging
import os
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError

logger = logging.getLogger(__name__)

STATE_NAME = "training_state.pt"
MODEL_DIR = "model"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_name(step: int) -> str:
    return f"checkpoint-{step:08d}"


def check_writable(folder: str | os.PathLike) -> Path:
    """Make `folder` and prove that files can be written and renamed in it; fail early, with
    the folder's name, rather than after hours of training."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-", delete=False) as probe:
            probe.write(b"ok")
        target = probe.name + ".renamed"
        os.replace(probe.name, target)
        os.unlink(target)
    except OSError as err:
        raise PermissionError(f"output folder {str(folder)!r} is not writable: {err.strerror or err}") from None
    return folder


# --------------------------------------------------------------------------- RNG states
def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch and CUDA generator states, as tensors and plain values (so the
    checkpoint loads with weights_only=True)."""
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            logger.warning("checkpoint has CUDA RNG states of %d devices, this machine has %d: not restored",
                           len(cuda), torch.cuda.device_count())


# --------------------------------------------------------------------------- writing
def _replace_dir(tmp: Path, final: Path) -> None:
    """Move the finished folder `tmp` to `final`, replacing an older `final` if any."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# What a failed write raises: OSError (a full disk, no permission), or the serialisers' own types
# (torch.save's RuntimeError, SafetensorError), whose messages do not always say what happened.
_WRITE_ERRORS = (OSError, RuntimeError, SafetensorError)


def _write_failed(target: Path, err: BaseException, intact: str) -> OSError:
    """An OSError naming what could not be written, why, how much room is left, and what is intact."""
    try:
        free = f"{shutil.disk_usage(target.parent).free / 2**20:.1f} MiB free there"
    except OSError:
        free = "free space unknown"
    return OSError(getattr(err, "errno", None) or 0,
                   f"{target}: not written ({type(err).__name__}: {err}; {free}). Nothing was replaced: {intact}")


def save_model_folder(model: torch.nn.Module, folder: str | os.PathLike, extra: dict[str, str] | None = None) -> Path:
    """`model.save_pretrained(folder)`, atomically; `extra` files (name -> text) beside it."""
    folder = Path(folder)
    tmp = None
    try:
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.tmp-"))
        model.save_pretrained(tmp)
        for name, text in (extra or {}).items():
            (tmp / name).write_text(text)
        _replace_dir(tmp, folder)
    except BaseException as err:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, _WRITE_ERRORS):
            raise _write_failed(folder, err, "the checkpoints written so far are intact") from err
        raise
    return folder


def save_checkpoint(
    out_dir: str | os.PathLike,
    step: int,
    state: dict[str, Any],
    model: torch.nn.Module,
    keep_last: int | None = None,
    extra: dict[str, str] | None = None,
) -> Path:
    """Write `checkpoint-<step>` (training state + a `save_pretrained` model folder) atomically,
    then delete all but the newest `keep_last` checkpoints."""
    out_dir = Path(out_dir)
    final = out_dir / checkpoint_name(step)
    tmp = None
    try:
        tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=f".{final.name}.tmp-"))
        torch.save(state, tmp / STATE_NAME)
        model.save_pretrained(tmp / MODEL_DIR)
        for name, text in (extra or {}).items():
            (tmp / MODEL_DIR / name).write_text(text)
        _replace_dir(tmp, final)
    except BaseException as err:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, _WRITE_ERRORS):
            previous = latest_checkpoint(out_dir)
            intact = f"the last checkpoint, {previous}, is intact; free space and resume with resume=True" \
                if previous is not None else "there is no earlier checkpoint"
            raise _write_failed(final, err, intact) from err
        raise
    if keep_last is not None and keep_last > 0:
        for _, old in list_checkpoints(out_dir)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    return final


# --------------------------------------------------------------------------- reading
def list_checkpoints(out_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete checkpoints in `out_dir`, oldest first."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    found = []
    for child in out_dir.iterdir():
        match = _CHECKPOINT_RE.match(child.name)
        if match and (child / STATE_NAME).is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def remove_incomplete(out_dir: str | os.PathLike) -> list[Path]:
    """Delete the hidden temporary folders that interrupted checkpoint writes (a kill, a full
    disk) left in `out_dir`, saying so; they are never loaded. Returns what was removed."""
    out_dir = Path(out_dir)
    removed = sorted(p for p in out_dir.glob(".checkpoint-*.tmp-*") if p.is_dir()) if out_dir.is_dir() else []
    for folder in removed:
        logger.warning("ignoring %s: an incomplete checkpoint from an interrupted write (removed)", folder)
        shutil.rmtree(folder, ignore_errors=True)
    return removed


def load_resume(resume: bool | str | None, out_dir: str | os.PathLike) -> tuple[Path, dict[str, Any]] | None:
    """The checkpoint to continue from and its training state (see `resolve_resume`), or None.

    With `resume=True` this is the newest checkpoint that can be read: one whose file is damaged
    (a disk error, a partial copy) is reported and the one before it is used. A checkpoint named
    explicitly must be readable.
    """
    path = resolve_resume(resume, out_dir)
    if path is None:
        return None
    if not _is_auto(resume):
        return path, load_checkpoint(path)
    damaged = []
    for _, candidate in reversed(list_checkpoints(out_dir)):
        try:
            return candidate, load_checkpoint(candidate)
        except ValueError as err:
            logger.warning("resume: skipping %s, which cannot be read: %s", candidate, err)
            damaged.append(str(err))
    raise ValueError(f"resume: no checkpoint in {out_dir} can be read ({'; '.join(damaged)}); remove them or "
                     "pass resume=False to start over")


def _is_auto(resume: bool | str | None) -> bool:
    return resume is True or str(resume).lower() in {"true", "auto", "latest"}


def latest_checkpoint(out_dir: str | os.PathLike) -> Path | None:
    found = list_checkpoints(out_dir)
    return found[-1][1] if found else None


def resolve_resume(resume: bool | str | None, out_dir: str | os.PathLike) -> Path | None:
    """`True`: the newest checkpoint in `out_dir` (None if there is none yet); a path: that
    checkpoint folder or its training_state.pt; False/None/"": no resume."""
    if resume is None or resume is False or resume == "":
        return None
    if _is_auto(resume):
        return latest_checkpoint(out_dir)
    path = Path(resume)
    if path.is_dir() and not (path / STATE_NAME).is_file():
        latest = latest_checkpoint(path)
        if latest is None:
            raise FileNotFoundError(f"resume={str(resume)!r}: no checkpoint-N folder with {STATE_NAME} in it")
        return latest
    if path.is_file():
        path = path.parent
    if not (path / STATE_NAME).is_file():
        raise FileNotFoundError(f"resume={str(resume)!r}: no {STATE_NAME} there")
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The training state of a checkpoint folder (or the .pt file itself), read safely."""
    path = Path(path)
    file = path / STATE_NAME if path.is_dir() else path
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - say which file, whatever torch raised
        raise ValueError(f"{file}: not a readable training checkpoint ({type(err).__name__}: {err})") from None


__all__ = ["check_writable", "rng_state", "set_rng_state", "save_checkpoint", "save_model_folder",
           "list_checkpoints", "latest_checkpoint", "resolve_resume", "load_resume", "load_checkpoint",
           "remove_incomplete", "checkpoint_name",
           "STATE_NAME", "MODEL_DIR"]
