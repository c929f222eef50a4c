"""videomae.export: ONNX and torch.export files with a dynamic batch, their outputs against the
PyTorch model's, and `videomae classify` running them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from videomae import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEModel
from videomae.cli import main
from videomae.data.synthetic import render_clip, write_video
from videomae.export import export_model, use_explicit_attention
from videomae.exported import load_exported, read_metadata
from videomae.processing import VideoMAEImageProcessor

if os.environ.get("CI") != "true":  # CI installs the export extra (scripts/test.sh): there, missing it fails
    for _name in ("onnx", "onnxruntime", "onnxscript"):
        pytest.importorskip(_name, reason="the export extra: pip install 'videomae[export]'")

TINY = dict(image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=2,
            num_attention_heads=2, intermediate_size=64)
LABELS = ["left", "right", "up", "down"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    model = VideoMAEForVideoClassification(VideoMAEConfig(**TINY, id2label=dict(enumerate(LABELS)))).eval()
    with torch.no_grad():  # a head that separates classes more than the init's 0.02 scale does
        model.classifier.weight.normal_(0, 1.0)
    model.save_pretrained(root / "classifier")
    VideoMAEImageProcessor(size={"shortest_edge": 32}, crop_size=32, image_mean=[0.45, 0.45, 0.4],
                           image_std=[0.2, 0.25, 0.22]).save_pretrained(root / "classifier")
    return root / "classifier"


@pytest.fixture(scope="module")
def onnx_file(folder: Path) -> Path:
    return export_model(folder, "onnx", folder.parent / "model.onnx")


@pytest.fixture(scope="module")
def pt2_file(folder: Path) -> Path:
    return export_model(folder, "torch-export", folder.parent / "model.pt2")


def test_eager_config_takes_the_explicit_attention_path() -> None:
    torch.manual_seed(0)
    sdpa = VideoMAEModel(VideoMAEConfig(**TINY)).eval()
    eager = VideoMAEModel(VideoMAEConfig(**TINY, attn_implementation="eager")).eval()
    eager.load_state_dict(sdpa.state_dict())
    assert [b.attn.explicit for b in sdpa.blocks] == [False, False]
    assert [b.attn.explicit for b in eager.blocks] == [True, True]
    x = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(eager(x).last_hidden_state, sdpa(x).last_hidden_state, atol=1e-5, rtol=1e-5)
    assert use_explicit_attention(sdpa).config.attn_implementation == "eager"
    assert all(b.attn.explicit for b in sdpa.blocks)


@pytest.mark.parametrize("batch", [1, 3])
def test_onnx_logits_equal_pytorch_for_any_batch(folder: Path, onnx_file: Path, batch: int) -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[0] == "batch"  # a symbolic dimension, not the traced 2
    assert session.get_inputs()[0].shape[1:] == [4, 3, 32, 32]
    torch.manual_seed(batch)
    x = torch.randn(batch, 4, 3, 32, 32)
    model = VideoMAEForVideoClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        expected = model(x).logits.numpy()
    [logits] = session.run(None, {"pixel_values": x.numpy()})
    assert logits.shape == (batch, 4)
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=1e-4)


def test_onnx_graph_has_no_fused_attention(onnx_file: Path) -> None:
    import onnx

    ops = {node.op_type for node in onnx.load(str(onnx_file)).graph.node}
    assert "Softmax" in ops and "MatMul" in ops
    assert "Attention" not in ops  # the fused op of opset 23 / contrib


def test_exported_files_carry_config_and_processor(folder: Path, onnx_file: Path, pt2_file: Path) -> None:
    for path in (onnx_file, pt2_file):
        meta = read_metadata(path)
        assert meta["videomae.output"] == "logits"
        assert json.loads(meta["videomae.config"])["id2label"] == {str(i): n for i, n in enumerate(LABELS)}
        assert json.loads(meta["videomae.preprocessor"])["image_std"] == [0.2, 0.25, 0.22]


@pytest.mark.parametrize("batch", [1, 3])
def test_torch_export_round_trip(folder: Path, pt2_file: Path, batch: int) -> None:
    program = torch.export.load(pt2_file).module()
    torch.manual_seed(10 + batch)
    x = torch.randn(batch, 4, 3, 32, 32)
    model = VideoMAEForVideoClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        torch.testing.assert_close(program(x), model(x).logits, atol=1e-5, rtol=1e-5)
    loaded = load_exported(pt2_file)
    assert loaded.config.num_labels == 4
    torch.testing.assert_close(loaded(x).logits, model(x).logits.detach(), atol=1e-5, rtol=1e-5)


def test_encoder_export_outputs_tokens(tmp_path: Path) -> None:
    torch.manual_seed(1)
    VideoMAEModel(VideoMAEConfig(**TINY)).eval().save_pretrained(tmp_path / "encoder")
    out = export_model(tmp_path / "encoder", "onnx", tmp_path / "encoder.onnx")
    model = load_exported(out)
    x = torch.randn(3, 4, 3, 32, 32)
    reference = VideoMAEModel.from_pretrained(tmp_path / "encoder").eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x).last_hidden_state, reference(x).last_hidden_state, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="not a classifier"):
        from videomae.pipeline import load_classifier

        load_classifier(str(out))


def test_export_rejects_a_wrong_suffix(folder: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\*\.onnx"):
        export_model(folder, "onnx", tmp_path / "model.pt2")


def test_cli_export_then_classify_gives_the_folders_top_k(folder: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(0)
    videos = [write_video(tmp_path / f"clip{i}.mp4", render_clip(i, rng, num_frames=12, size=32)) for i in range(3)]
    assert main(["export", str(folder), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    assert "dynamic batch" in capsys.readouterr().err

    def top_k(model: str) -> list[dict]:
        code = main(["classify", *map(str, videos), "--model", model, "--top-k", "3", "--format", "jsonl",
                     "--num-workers", "0", "--num-clips", "2", "--batch-size", "3", "--no-progress",
                     "--dtype", "float32"])  # as the ONNX file, on any CPU
        assert code == 0
        return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    from_folder, from_onnx = top_k(str(folder)), top_k(str(tmp_path / "m.onnx"))
    assert len(from_onnx) == 3
    for a, b in zip(from_folder, from_onnx):
        assert a["video"] == b["video"]
        assert [t["label"] for t in a["top_k"]] == [t["label"] for t in b["top_k"]]
        np.testing.assert_allclose([t["score"] for t in a["top_k"]], [t["score"] for t in b["top_k"]], atol=1e-4)
