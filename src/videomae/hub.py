"""Finding a checkpoint's files: a local folder, a local file, or a hub repo id."""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

import huggingface_hub


def _hub_error(name: str) -> type[BaseException]:
    """huggingface_hub moved its error classes between releases; look them up by name."""
    for module_name in ("huggingface_hub.errors", "huggingface_hub.utils"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        cls = getattr(module, name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            return cls
    return type(name, (Exception,), {})


_ENTRY_NOT_FOUND = _hub_error("EntryNotFoundError")
_LOCAL_NOT_FOUND = _hub_error("LocalEntryNotFoundError")  # a subclass of the above in recent releases
_REPO_NOT_FOUND = _hub_error("RepositoryNotFoundError")
_REVISION_NOT_FOUND = _hub_error("RevisionNotFoundError")
_VALIDATION = _hub_error("HFValidationError")


_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def is_local(name_or_path: str | os.PathLike) -> bool:
    return Path(name_or_path).exists()


def resolve_file(
    name_or_path: str | os.PathLike,
    filename: str,
    *,
    required: bool = True,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
) -> Path | None:
    """Path of `filename` inside a local folder or a hub repo (downloaded into the cache).

    Returns None for a missing optional file; raises FileNotFoundError for a missing
    required one and OSError when the hub cannot be reached.
    """
    path = Path(name_or_path)
    if path.is_dir():
        candidate = path / filename
        if candidate.is_file():
            return candidate
        if required:
            raise FileNotFoundError(f"{path}: no {filename} in this folder")
        return None
    if path.exists():
        raise FileNotFoundError(f"{path}: expected a folder holding {filename}, found a file")
    name = os.fspath(name_or_path)
    if not _REPO_ID.match(name):
        raise FileNotFoundError(f"{name}: no such file or folder (and not a hub repo id)")
    try:
        return Path(
            huggingface_hub.hf_hub_download(
                repo_id=name, filename=filename, revision=revision, cache_dir=cache_dir,
                token=token, local_files_only=local_files_only,
            )
        )
    except _LOCAL_NOT_FOUND as err:
        raise _offline_error(name, err) from None
    except _ENTRY_NOT_FOUND:
        if required:
            raise FileNotFoundError(f"hub repo {name!r} has no file {filename}") from None
        return None
    except (_REPO_NOT_FOUND, _REVISION_NOT_FOUND, _VALIDATION) as err:
        raise FileNotFoundError(f"{name!r} is neither a local path nor a hub repo id: {err}") from None
    except OSError as err:  # no network, offline mode, file not in the cache
        raise _offline_error(name, err) from None


def _offline_error(name: str, err: BaseException) -> OSError:
    return OSError(
        f"{name!r} is not a local folder and could not be fetched from the Hugging Face Hub "
        f"(offline, or not in the local cache): download it where there is network, or pass a "
        f"local folder [{type(err).__name__}]"
    )
