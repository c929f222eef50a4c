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
