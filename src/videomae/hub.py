"""Finding a checkpoint's files: a local folder, a local file, or a hub repo id."""

from __future__ import annotations

import importlib
import os
import re
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import huggingface_hub
from huggingface_hub import constants as hub_constants


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

# huggingface_hub retries an unreachable hub 5 times with back-off (about 25 s) before it falls
# back to the cache. One short connection attempt first tells "offline" in about a second.
CONNECT_TIMEOUT = 1.0
_PROBE_TTL = 30.0  # seconds a probe's answer is reused: one probe for the several files of a model
_probes: dict[tuple[str, int], tuple[float, bool]] = {}


def _could_be_repo_id(name: str) -> bool:
    """The hub's own rules: letters, digits, `-`, `_`, `.`; at most one `/`; no `--` or `..`;
    no `-` or `.` at either end; 96 characters at most."""
    return (bool(_REPO_ID.match(name)) and "--" not in name and ".." not in name and len(name) <= 96
            and not name.endswith((".", "-")))


def _hub_address() -> tuple[str, int] | None:
    """(host, port) a download connects to first: the proxy for the hub's scheme if one is
    set, else the endpoint (HF_ENDPOINT, default huggingface.co)."""
    endpoint = urlsplit(hub_constants.ENDPOINT)
    scheme = endpoint.scheme or "https"
    proxy = next((os.environ[v] for v in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY")
                  if os.environ.get(v)), None)
    target = urlsplit(proxy if "://" in (proxy or "://") else f"http://{proxy}") if proxy else endpoint
    if not target.hostname:
        return None
    return target.hostname, target.port or (443 if target.scheme == "https" else 80)


def hub_reachable(timeout: float = CONNECT_TIMEOUT) -> bool:
    """Whether a TCP connection to the hub (or its proxy) opens within `timeout` seconds, name
    lookup included; the answer is reused for a few seconds."""
    address = _hub_address()
    if address is None:
        return True  # cannot tell: let huggingface_hub try
    now = time.monotonic()
    cached = _probes.get(address)
    if cached is not None and now - cached[0] < _PROBE_TTL:
        return cached[1]
    result: list[bool] = []

    def connect() -> None:  # in a thread: a stuck name lookup ignores socket timeouts
        try:
            socket.create_connection(address, timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=connect, daemon=True, name="videomae-hub-probe")
    thread.start()
    thread.join(timeout)
    reachable = bool(result and result[0])
    _probes[address] = (time.monotonic(), reachable)
    return reachable


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
    if not _could_be_repo_id(name):
        raise FileNotFoundError(f"{name}: no such file or folder (and not a hub repo id)")
    unreachable = not (local_files_only or hub_constants.HF_HUB_OFFLINE or hub_reachable())
    try:
        return Path(
            huggingface_hub.hf_hub_download(
                repo_id=name, filename=filename, revision=revision, cache_dir=cache_dir,
                token=token, local_files_only=local_files_only or unreachable,
            )
        )
    except _LOCAL_NOT_FOUND as err:
        raise _offline_error(name, err, hub_constants.ENDPOINT if unreachable else None) from None
    except _ENTRY_NOT_FOUND:
        if required:
            raise FileNotFoundError(f"hub repo {name!r} has no file {filename}") from None
        return None
    except (_REPO_NOT_FOUND, _REVISION_NOT_FOUND, _VALIDATION) as err:
        raise FileNotFoundError(f"{name!r} is neither a local path nor a hub repo id: {err}") from None
    except OSError as err:  # no network, offline mode, file not in the cache
        raise _offline_error(name, err) from None


def _offline_error(name: str, err: BaseException, unreachable: str | None = None) -> OSError:
    why = (f"{unreachable} could not be reached (tried for {CONNECT_TIMEOUT:g} s), and it is not in the local cache"
           if unreachable else "offline, or not in the local cache")
    return OSError(
        f"{name!r} is not a local folder and could not be fetched from the Hugging Face Hub "
        f"({why}): check the name, download it where there is network, or pass a "
        f"local folder [{type(err).__name__}]"
    )
