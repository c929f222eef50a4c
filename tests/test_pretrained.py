"""Building and loading models: the initialisation pass and what loading says."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from videomae import VideoMAEConfig, VideoMAEForPreTraining, VideoMAEForVideoClassification, VideoMAEModel
from videomae import pretrained

TINY = dict(image_size=16, patch_size=8, num_frames=2, tubelet_size=2, hidden_size=16, num_hidden_layers=1,
            num_attention_heads=2, intermediate_size=32, decoder_hidden_size=8, decoder_num_hidden_layers=1,
            decoder_num_attention_heads=1, decoder_intermediate_size=16)


@pytest.fixture
def init_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = pretrained.init_weights

    def counting(module: torch.nn.Module, config: VideoMAEConfig, prefix: str = "") -> None:
        calls.append(prefix or type(module).__name__)
        real(module, config, prefix)

    monkeypatch.setattr(pretrained, "init_weights", counting)
    return calls


def test_skipping_the_initialisation_is_an_argument_not_a_global(init_calls: list[str], tmp_path: Path) -> None:
    assert not hasattr(pretrained, "_skip_init")
    VideoMAEModel(VideoMAEConfig(**TINY))
    assert init_calls == ["VideoMAEModel"]
    init_calls.clear()
    model = VideoMAEModel(VideoMAEConfig(**TINY), skip_init=True)
    assert init_calls == []
    model.save_pretrained(tmp_path)
    loaded = VideoMAEModel.from_pretrained(tmp_path)  # everything is in the checkpoint: nothing to initialise
    assert init_calls == []
    torch.testing.assert_close(loaded.state_dict(), model.state_dict())


def test_the_same_seed_gives_the_same_weights() -> None:
    """skip_init=False builds exactly as before (the inner encoder initialises, then the whole)."""
    torch.manual_seed(0)
    a = VideoMAEForVideoClassification(VideoMAEConfig(**TINY, num_labels=3))
    torch.manual_seed(0)
    b = VideoMAEForVideoClassification(VideoMAEConfig(**TINY, num_labels=3))
    torch.testing.assert_close(a.state_dict(), b.state_dict())


def test_unused_decoder_weights_are_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    VideoMAEForPreTraining(VideoMAEConfig(**TINY)).save_pretrained(tmp_path)
    with caplog.at_level(logging.INFO, logger="videomae.pretrained"):
        VideoMAEForVideoClassification.from_pretrained(tmp_path, num_labels=3)
    unused = [r.getMessage() for r in caplog.records if "not used" in r.getMessage()]
    assert len(unused) == 1
    assert "pretraining decoder" in unused[0] and "encoder only" in unused[0]
    assert "decoder.blocks.0" not in unused[0]  # not the list of names


def test_compile_blocks_compiles_the_encoder_and_decoder_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[torch.nn.Module] = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kw: compiled.append(self))
    model = VideoMAEForPreTraining(VideoMAEConfig(**TINY))
    assert model.compile_blocks() is model
    assert compiled == [*model.videomae.blocks, *model.decoder.blocks]
