"""Hub repo ids, with huggingface_hub's download replaced by a local stand-in (no network here)."""

from __future__ import annotations

import shutil

import huggingface_hub
import pytest
import torch
from huggingface_hub.errors import EntryNotFoundError

import videomae
from reference import compare_outputs, randomize, tiny


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """A 'remote' folder per repo id; downloads copy one file into a snapshot folder."""
    remote, cache, calls = tmp_path / "remote", tmp_path / "cache", []

    def download(repo_id, filename, revision=None, cache_dir=None, token=None, local_files_only=False, **_):
        calls.append(filename)
        source = remote / repo_id / filename
        if not source.is_file():
            raise EntryNotFoundError(f"{repo_id} has no {filename}")
        target = cache / repo_id / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
        return str(target)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    monkeypatch.setattr(videomae.hub, "hub_reachable", lambda *a: True)  # the stand-in needs no network
    return remote, calls


def _pixels():
    return torch.randn(1, 4, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def test_sharded_checkpoint_from_a_hub_id_downloads_every_shard(fake_hub):
    remote, calls = fake_hub
    model = randomize(videomae.VideoMAEModel(videomae.VideoMAEConfig(**tiny()))).eval()
    model.save_pretrained(remote / "org" / "sharded", max_shard_size="20KB")
    shards = sorted(p.name for p in (remote / "org" / "sharded").glob("model-*.safetensors"))
    assert len(shards) > 1
    loaded = videomae.VideoMAEModel.from_pretrained("org/sharded")
    assert set(shards) <= set(calls)
    compare_outputs(loaded(_pixels()), model(_pixels()), tol=0.0)


def test_hub_falls_back_to_bin_weights(fake_hub):
    remote, calls = fake_hub
    model = randomize(videomae.VideoMAEModel(videomae.VideoMAEConfig(**tiny()))).eval()
    model.save_pretrained(remote / "org" / "bin", safe_serialization=False)
    loaded = videomae.VideoMAEModel.from_pretrained("org/bin")
    assert calls[:2] == ["config.json", "model.safetensors"] and "pytorch_model.bin" in calls
    compare_outputs(loaded(_pixels()), model(_pixels()), tol=0.0)


def test_hub_repo_without_config_is_named(fake_hub):
    remote, _ = fake_hub
    (remote / "org" / "empty").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="'org/empty' has no file config.json"):
        videomae.VideoMAEModel.from_pretrained("org/empty")


# --------------------------------------------------------------------------- no network
def _closed_port() -> int:
    import socket

    with socket.socket() as s:  # bound, never listening: connections are refused
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_hub_fails_within_two_seconds(tmp_path, monkeypatch, caplog):
    """Without network, huggingface_hub retried 5 times with back-off (about 25 s); one short
    connection attempt now says 'offline' at once, and the cache is still used."""
    import logging
    import time

    from huggingface_hub import constants

    from videomae import hub

    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "_probes", {})
    start = time.perf_counter()
    with caplog.at_level(logging.WARNING), pytest.raises(OSError, match="'nothere' is not a local folder.*"
                                                          "could not be reached"):
        hub.resolve_file("nothere", "config.json", cache_dir=tmp_path)
    assert time.perf_counter() - start < 2.0
    assert not [r for r in caplog.records if "Retry" in r.getMessage()]


def test_names_that_cannot_be_hub_ids_fail_at_once(monkeypatch):
    from videomae import hub

    monkeypatch.setattr(hub, "hub_reachable", lambda *a: pytest.fail("no hub lookup for a path"))
    for name in ("runs/pretrain/model", "./model", "a--b", "a/b..c", "model-", "x" * 97):
        with pytest.raises(FileNotFoundError, match="no such file or folder"):
            hub.resolve_file(name, "config.json")


def test_the_cli_prints_hub_log_lines_once(tmp_path):
    """huggingface_hub has its own handler; the CLI's logging set-up must not repeat its lines."""
    import subprocess
    import sys

    code = ("import logging, huggingface_hub.file_download; from videomae.cli import _setup_logging; "
            "_setup_logging(False, 'classify'); "
            "logging.getLogger('huggingface_hub.file_download').warning('Retrying in 1s')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stderr.count("Retrying in 1s") == 1, result.stderr
