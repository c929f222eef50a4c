"""The `videomae` command, driven as a user drives it: `python -m videomae ...` in a subprocess,
on tiny random models saved to a temporary folder and tiny generated videos."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from videomae import VideoMAEConfig, VideoMAEForPreTraining, VideoMAEForVideoClassification
from videomae.checkpoint import to_original
from videomae.cli import build_parser, main
from videomae.data.synthetic import render_clip, write_video
from videomae.processing import VideoMAEImageProcessor
from videomae.video import read_video

TINY = dict(image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=1,
            num_attention_heads=2, intermediate_size=64, decoder_hidden_size=16, decoder_num_hidden_layers=1,
            decoder_num_attention_heads=1, decoder_intermediate_size=32)
LABELS = ["left", "right", "up", "down"]
SUBCOMMANDS = ["classify", "embed", "reconstruct", "convert", "export", "prep", "pretrain", "finetune", "evaluate",
               "demo", "serve", "probe"]


def videomae(*args: str) -> subprocess.CompletedProcess:
    """`python -m videomae ARGS` in a fresh process, as a user runs it."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "videomae", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def videomae_here(*args: str) -> subprocess.CompletedProcess:
    """The same command through `main()` in this process: the same code from argument parsing to
    exit status, without the seconds a fresh Python spends importing torch."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit_info:
            code = exit_info.code
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    processor = VideoMAEImageProcessor(size={"shortest_edge": 32}, crop_size=32, image_mean=[0.485, 0.456, 0.406],
                                       image_std=[0.229, 0.224, 0.225])
    classifier = VideoMAEForVideoClassification(VideoMAEConfig(**TINY, id2label=dict(enumerate(LABELS)))).eval()
    classifier.save_pretrained(root / "classifier")
    processor.save_pretrained(root / "classifier")
    pretraining = VideoMAEForPreTraining(VideoMAEConfig(**TINY)).eval()
    pretraining.save_pretrained(root / "pretraining")
    processor.save_pretrained(root / "pretraining")
    torch.save({"model": to_original(pretraining.internal_state_dict())}, root / "pretrain.pth")
    torch.save({"module": to_original(classifier.internal_state_dict())}, root / "classifier.pth")
    videos = root / "videos"
    rng = np.random.default_rng(0)
    for i in range(3):
        write_video(videos / f"clip{i}.mp4", render_clip(i, rng, num_frames=12, size=32))
    (root / "broken.mp4").write_bytes(b"this is not a video")
    return {"root": root, "classifier": root / "classifier", "pretraining": root / "pretraining",
            "videos": videos, "broken": root / "broken.mp4", "pretrain_pth": root / "pretrain.pth",
            "classifier_pth": root / "classifier.pth"}


def _expected_probs(model_dir: Path, video: Path, num_clips: int) -> torch.Tensor:
    """The mean softmax over clips, computed here with the library's pieces."""
    from videomae.pipeline import clip_indices

    model = VideoMAEForVideoClassification.from_pretrained(model_dir)
    processor = VideoMAEImageProcessor.from_pretrained(model_dir)
    frames = read_video(video)
    indices = clip_indices(frames.shape[0], model.config.num_frames, 4, num_clips)
    pixels = processor([frames[i] for i in indices], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        return model(pixels).logits.softmax(-1).mean(0)


# --------------------------------------------------------------------------- help and usage
def test_every_subcommand_has_help(capsys: pytest.CaptureFixture) -> None:
    for command in SUBCOMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert f"videomae {command}" in capsys.readouterr().out


def test_help_through_python_m() -> None:
    result = videomae("--help")
    assert result.returncode == 0
    for command in SUBCOMMANDS:
        assert command in result.stdout


def test_training_flags_come_from_the_options_dataclasses() -> None:
    import dataclasses

    from videomae.train import EvalOptions, FinetuneOptions, PretrainOptions

    parser = build_parser()
    actions = parser._subparsers._group_actions[0].choices  # noqa: SLF001 - argparse keeps them here
    for command, options in (("pretrain", PretrainOptions), ("finetune", FinetuneOptions),
                             ("evaluate", EvalOptions)):
        flags = {flag for action in actions[command]._actions for flag in action.option_strings}  # noqa: SLF001
        for f in dataclasses.fields(options):
            assert "--" + f.name.replace("_", "-") in flags, (command, f.name)
        assert "--config" in flags
    args = parser.parse_args(["finetune", "--betas", "0.8", "0.9", "--no-flip", "--resume", "--clip-grad", "none",
                              "--config-overrides", '{"hidden_size": 64}'])
    from videomae.cli.options import collect

    assert collect(args, args.option_names) == {"betas": [0.8, 0.9], "flip": False, "resume": True,
                                                "clip_grad": None, "config_overrides": {"hidden_size": 64}}


def test_wrong_flag_is_one_line_with_status_2() -> None:
    result = videomae("classify", "x.mp4", "--model", "m", "--no-such-flag")
    assert result.returncode == 2
    assert_one_line_error(result, "--no-such-flag")


# --------------------------------------------------------------------------- errors
def test_missing_video_is_one_line(assets: dict[str, Path]) -> None:
    result = videomae("classify", str(assets["root"] / "nope.mp4"), "--model", str(assets["classifier"]))
    assert_one_line_error(result, "nope.mp4", "no such file")


def test_bad_model_path_and_offline_hub_id(assets: dict[str, Path]) -> None:
    video = str(assets["videos"] / "clip0.mp4")
    assert_one_line_error(videomae_here("classify", video, "--model", str(assets["root"] / "no-model")), "no-model")
    assert_one_line_error(videomae_here("embed", video, "--model", "nobody-here/no-such-model", "--out",
                                   str(assets["root"] / "f.npy"), "--offline"), "no-such-model")


# --------------------------------------------------------------------------- classify
def test_classify_jsonl_with_a_broken_video(assets: dict[str, Path]) -> None:
    videos = sorted(assets["videos"].glob("*.mp4"))
    result = videomae("classify", str(assets["videos"]), str(assets["broken"]), "--model", str(assets["classifier"]),
                      "--format", "jsonl", "--top-k", "3", "--num-clips", "2", "--batch-size", "3",
                      "--dtype", "float32")  # compared with float32 below, on any CPU
    assert result.returncode == 1  # the broken video fails the command, the others are still classified
    assert "broken.mp4" in result.stderr and "Traceback" not in result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["video"] for r in records] == [str(v) for v in videos]
    expected = _expected_probs(assets["classifier"], videos[0], num_clips=2)
    top = records[0]["top_k"]
    assert len(top) == 3 and records[0]["clips"] == 2
    assert [t["score"] for t in top] == sorted((t["score"] for t in top), reverse=True)
    for entry in top:
        assert entry["label"] == LABELS[entry["id"]]
        assert entry["score"] == pytest.approx(float(expected[entry["id"]]), abs=1e-4)


def test_classify_table(assets: dict[str, Path]) -> None:
    video = assets["videos"] / "clip1.mp4"
    result = videomae_here("classify", str(video), "--model", str(assets["classifier"]), "--top-k", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["video", "rank", "label", "score"]
    assert lines[1].split()[:2] == [str(video), "1"] and lines[2].split()[0] == "2"
    assert lines[1].split()[2] in LABELS


def test_classify_an_original_pth_warns_that_it_guesses_imagenet_statistics(assets: dict[str, Path]) -> None:
    result = videomae("classify", str(assets["videos"] / "clip0.mp4"), "--model", str(assets["classifier_pth"]),
                      "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    assert "guessing the normalisation: mean [0.485, 0.456, 0.406], std [0.229, 0.224, 0.225]" in result.stderr
    assert len(result.stdout.splitlines()) == 1


def test_a_video_that_fails_prints_only_its_error(assets: dict[str, Path]) -> None:
    readme = Path(__file__).parent.parent / "README.md"
    result = videomae_here("classify", str(readme), "--model", str(assets["classifier"]), "--num-workers", "0")
    assert result.stdout == ""  # not even the table's header
    assert_one_line_error(result, "README.md")


def test_classify_with_label_names_workers_and_compile(assets: dict[str, Path], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from videomae.pretrained import PreTrainedVideoMAE

    compiled = []
    monkeypatch.setattr(PreTrainedVideoMAE, "compile_blocks", lambda self: compiled.append(self) or self)
    names = tmp_path / "names.txt"
    names.write_text("west\neast\nnorth\nsouth\n")
    common = [str(assets["videos"]), "--model", str(assets["classifier"]), "--format", "jsonl", "--num-clips", "2"]
    renamed = videomae_here("classify", *common, "--labels", str(names), "--num-workers", "2", "--compile")
    assert renamed.returncode == 0, renamed.stderr
    assert len(compiled) == 1
    plain = videomae_here("classify", *common, "--num-workers", "0")
    for a, b in zip(map(json.loads, renamed.stdout.splitlines()), map(json.loads, plain.stdout.splitlines()),
                    strict=True):
        assert [t["id"] for t in a["top_k"]] == [t["id"] for t in b["top_k"]]
        assert [t["score"] for t in a["top_k"]] == [t["score"] for t in b["top_k"]]  # workers change nothing
        assert [t["label"] for t in a["top_k"]] == [["west", "east", "north", "south"][t["id"]] for t in b["top_k"]]
    names.write_text("west\neast\n")
    assert_one_line_error(videomae_here("classify", *common, "--labels", str(names)), "2 class names", "4 outputs")


def test_classify_takes_the_sampling_rate_from_the_checkpoint(assets: dict[str, Path], tmp_path: Path) -> None:
    model = tmp_path / "rate2"
    shutil.copytree(assets["classifier"], model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "sampling_rate": 2}))
    video = str(assets["videos"] / "clip0.mp4")  # 12 frames: rate 2 and rate 3 (4, lowered) differ
    args = ["--format", "jsonl", "--num-clips", "1", "--num-workers", "0"]

    def scores(model_dir: Path, *extra: str) -> list[float]:
        result = videomae_here("classify", video, "--model", str(model_dir), *args, *extra)
        assert result.returncode == 0, result.stderr
        return [t["score"] for t in json.loads(result.stdout)["top_k"]]

    assert scores(model) == scores(assets["classifier"], "--sampling-rate", "2")
    assert scores(model) != scores(assets["classifier"])
    assert scores(model, "--sampling-rate", "3") == scores(assets["classifier"])


@pytest.mark.parametrize("units, line, tolerance", [
    ("AMX bf16", "dtype: bfloat16 (CPU has AMX bf16)", 2e-2),
    (None, "dtype: float32 (CPU has no AMX or AVX512-BF16)", 1e-4),
])
def test_dtype_auto_follows_the_cpu_and_says_so(assets: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                                units: str | None, line: str, tolerance: float) -> None:
    """bf16 on CPUs with bf16 matrix units (AMX, AVX512-BF16), float32 elsewhere; one line on
    stderr says which. The detection is forced both ways: not every machine has the units."""
    from videomae import devices

    monkeypatch.setattr(devices, "cpu_bf16_units", lambda: units)
    video = assets["videos"] / "clip0.mp4"
    result = videomae_here("classify", str(video), "--model", str(assets["classifier"]), "--format", "jsonl",
                           "--top-k", "4", "--num-clips", "2", "--num-workers", "0")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [line]
    expected = _expected_probs(assets["classifier"], video, num_clips=2)  # float32
    error = max(abs(t["score"] - float(expected[t["id"]])) for t in json.loads(result.stdout)["top_k"])
    assert error < tolerance
    assert (error > 1e-6) == (units is not None)  # bf16 did run where it was chosen

    out = assets["root"] / f"dtype-{units}.npy"
    result = videomae_here("embed", str(video), "--model", str(assets["classifier"]), "--out", str(out),
                           "--num-workers", "0")
    assert result.returncode == 0 and result.stderr.splitlines()[0] == line


# --------------------------------------------------------------------------- embed
def test_embed_npy_and_npz(assets: dict[str, Path]) -> None:
    out = assets["root"] / "features.npy"
    result = videomae("embed", str(assets["videos"]), "--model", str(assets["pretraining"]), "--out", str(out),
                      "--num-clips", "1", "--exact-resize", "--dtype", "float32")
    assert result.returncode == 0, result.stderr
    features = np.load(out)
    names = out.with_suffix(".txt").read_text().splitlines()
    assert features.shape == (3, TINY["hidden_size"]) and len(names) == 3
    # mean of the encoder's tokens for the centred clip
    encoder = VideoMAEForPreTraining.from_pretrained(assets["pretraining"]).videomae
    processor = VideoMAEImageProcessor.from_pretrained(assets["pretraining"])
    pixels = processor(names[0], return_tensors="pt", num_frames=4, frame_sample_rate=3)["pixel_values"]
    with torch.no_grad():
        expected = encoder(pixels).last_hidden_state.mean(1)[0].numpy()
    np.testing.assert_allclose(features[0], expected, rtol=1e-4, atol=1e-5)
    # the default resizes in the decoder (FFmpeg's bilinear): close to the processor's (equal here
    # where the clips are already at the model's size; tests/test_pipeline.py checks resized ones)
    fast = assets["root"] / "features-fast.npy"
    result = videomae("embed", str(assets["videos"]), "--model", str(assets["pretraining"]), "--out", str(fast),
                      "--num-clips", "1", "--dtype", "float32")
    assert result.returncode == 0, result.stderr
    fast_features = np.load(fast)
    assert np.linalg.norm(fast_features - features) / np.linalg.norm(features) < 0.05

    npz = assets["root"] / "features.npz"
    result = videomae_here("embed", str(assets["videos"] / "clip2.mp4"), "--model", str(assets["classifier"]),
                      "--out", str(npz))
    assert result.returncode == 0, result.stderr
    with np.load(npz) as data:
        assert data["features"].shape == (1, TINY["hidden_size"])
        assert list(data["names"]) == [str(assets["videos"] / "clip2.mp4")]
    assert "fc_norm" in result.stderr


def test_embed_parquet_needs_pyarrow(assets: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the `features` extra, a .parquet output is a one-line error naming pyarrow (its
    absence simulated: a None entry in sys.modules makes the import fail)."""
    import sys

    for name in [m for m in sys.modules if m == "pyarrow" or m.startswith("pyarrow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    result = videomae_here("embed", str(assets["videos"]), "--model", str(assets["pretraining"]), "--out",
                           str(assets["root"] / "f.parquet"))
    assert_one_line_error(result, "pyarrow")


# --------------------------------------------------------------------------- reconstruct
def test_reconstruct_png_gif_mp4(assets: dict[str, Path]) -> None:
    root = assets["root"]
    result = videomae("reconstruct", str(assets["videos"] / "clip0.mp4"), "--model", str(assets["pretraining"]),
                      "--out", str(root / "rec.png"), "--gif", str(root / "rec.gif"), "--mp4", str(root / "rec.mp4"),
                      "--mask-ratio", "0.75", "--seed", "3", "--scale", "2")
    assert result.returncode == 0, result.stderr
    grid = Image.open(root / "rec.png")
    # 3 rows of 64-pixel frames, 4 columns, 2-pixel gaps, a label strip on the left
    assert grid.size[1] == 3 * 64 + 2 * 2 and grid.size[0] > 4 * 64
    assert Image.open(root / "rec.gif").n_frames == TINY["num_frames"]
    assert read_video(root / "rec.mp4").shape[0] == TINY["num_frames"]


def test_reconstruct_needs_a_decoder(assets: dict[str, Path]) -> None:
    result = videomae_here("reconstruct", str(assets["videos"] / "clip0.mp4"), "--model", str(assets["classifier"]),
                           "--out", str(assets["root"] / "x.png"))
    assert_one_line_error(result, "decoder")


# --------------------------------------------------------------------------- convert
def test_convert_original_checkpoints(assets: dict[str, Path]) -> None:
    root = assets["root"]
    labels = root / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    result = videomae("convert", str(assets["pretrain_pth"]), str(root / "converted-pre"), "--num-frames", "4",
                      "--image-size", "32", "--num-attention-heads", "2")
    assert result.returncode == 0, result.stderr
    result = videomae_here("convert", str(assets["classifier_pth"]), str(root / "converted-cls"), "--num-frames",
                           "4", "--image-size", "32", "--num-attention-heads", "2", "--labels", str(labels))
    assert result.returncode == 0, result.stderr
    assert "VideoMAEForVideoClassification" in result.stderr

    pixels = torch.randn(2, 4, 3, 32, 32)
    mask = torch.zeros(2, 32, dtype=torch.bool)
    mask[:, ::2] = True
    original = VideoMAEForPreTraining.from_pretrained(assets["pretraining"])
    converted = VideoMAEForPreTraining.from_pretrained(root / "converted-pre")
    with torch.no_grad():
        # the .pth has no config: its layer_norm_eps is the original code's 1e-6 (ours was 1e-12)
        torch.testing.assert_close(converted(pixels, mask).logits, original(pixels, mask).logits, rtol=1e-4,
                                   atol=1e-4)
    converted = VideoMAEForVideoClassification.from_pretrained(root / "converted-cls")
    assert converted.config.id2label == dict(enumerate(LABELS))
    original = VideoMAEForVideoClassification.from_pretrained(assets["classifier"])
    with torch.no_grad():
        torch.testing.assert_close(converted(pixels).logits, original(pixels).logits, rtol=1e-4, atol=1e-4)
    assert (root / "converted-cls" / "preprocessor_config.json").is_file()

    again = videomae_here("convert", str(assets["pretrain_pth"]), str(root / "converted-pre"))
    assert_one_line_error(again, "not empty")


# --------------------------------------------------------------------------- training commands
def test_pretrain_then_evaluate_from_the_command_line(assets: dict[str, Path], tmp_path: Path) -> None:
    lines = [f"{p} {i % 4}" for i, p in enumerate(sorted(assets["videos"].glob("*.mp4")))]
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    config = tmp_path / "options.json"
    config.write_text(json.dumps({"epochs": 5, "batch_size": 1, "mask_ratio": 0.5}))
    result = videomae("pretrain", "--config", str(config), "--data", str(tmp_path / "list.txt"), "--model", "small",
                      "--config-overrides", json.dumps(TINY), "--output-dir", str(tmp_path / "run"), "--max-steps",
                      "2", "--device", "cpu", "--num-workers", "0", "--no-progress", "--sampling-rate", "2",
                      "--short-side", "32", "--mask-ratio", "0.75")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["step"] == 2 and Path(summary["model_dir"]).is_dir()
    saved = json.loads((tmp_path / "run" / "options.json").read_text())
    assert saved["epochs"] == 5 and saved["mask_ratio"] == 0.75  # file < flags
    # the saved model says how its clips were sampled; `classify` and `embed` use it
    assert json.loads((Path(summary["model_dir"]) / "config.json").read_text())["sampling_rate"] == 2

    result = videomae_here("evaluate", "--model", str(assets["classifier"]), "--data", str(tmp_path / "list.txt"),
                           "--output-dir", str(tmp_path / "eval"), "--device", "cpu", "--num-workers", "0",
                           "--no-progress", "--sampling-rate", "2", "--eval-num-clips", "1", "--eval-num-crops", "1")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout[result.stdout.index("{"):])["num_videos"] == 3

    config.write_text(json.dumps({"epochz": 5}))
    result = videomae_here("pretrain", "--config", str(config), "--data", str(tmp_path / "list.txt"))
    assert_one_line_error(result, "epochz")


def test_finetune_and_evaluate_with_the_ssv2_protocol(assets: dict[str, Path], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from videomae.data import datasets

    used = []  # the sampling rule of every clip the run cut, training and evaluation
    for name in ("training_indices", "evaluation_indices"):
        rule = getattr(datasets, name)
        monkeypatch.setattr(datasets, name,
                            lambda sampling, *args, _rule=rule: used.append(sampling) or _rule(sampling, *args))
    lines = [f"{p} {i % 2}" for i, p in enumerate(sorted(assets["videos"].glob("*.mp4")))]
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(lines) + "\n")
    common = ["--data", str(listing), "--device", "cpu", "--num-workers", "0", "--no-progress"]
    result = videomae_here("finetune", "--protocol", "ssv2", "--eval-num-crops", "1", "--eval-data", str(listing),
                           "--model", "small", "--config-overrides", json.dumps(TINY), "--output-dir",
                           str(tmp_path / "ft"), "--epochs", "1", "--batch-size", "2", "--short-side", "36", *common)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["step"] == 1 and summary["eval"]["num_videos"] == 3
    saved = json.loads((tmp_path / "ft" / "options.json").read_text())
    assert {k: saved[k] for k in ("protocol", "sampling", "sampling_rate", "flip", "eval_num_clips",
                                  "eval_num_crops")} == {"protocol": "ssv2", "sampling": "segments",
                                                         "sampling_rate": 2, "flip": False, "eval_num_clips": 2,
                                                         "eval_num_crops": 1}  # the flag beats the preset
    assert json.loads((tmp_path / "ft" / "eval_metrics.json").read_text())["num_views"] == 2
    assert len(used) == 2 * 2 + 3 and set(used) == {"segments"}  # 2 videos x num_sample 2, then 3 videos
    result = videomae_here("evaluate", "--protocol", "ssv2", "--model", summary["model_dir"], "--output-dir",
                           str(tmp_path / "eval"), *common)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["num_videos"] == 3
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["num_views"] == 6  # 2 clips x 3 crops
    saved = json.loads((tmp_path / "eval" / "options.json").read_text())
    assert (saved["protocol"], saved["sampling"], saved["eval_num_clips"]) == ("ssv2", "segments", 2)
    assert_one_line_error(videomae_here("evaluate", "--protocol", "ucf", "--model", "m", *common), "protocol")


def test_classify_and_embed_start_decoding_before_the_model_loads(assets: dict[str, Path], monkeypatch,
                                                                 tmp_path: Path) -> None:
    """Decoding workers fork before the weights load (and before CUDA starts), so they decode
    while the model loads; the results are those of the later start."""
    from videomae import pipeline

    order: list[str] = []
    for name in ("start_decoding", "load_classifier", "load_feature_model"):
        real = getattr(pipeline, name)
        monkeypatch.setattr(pipeline, name,
                            lambda *a, _real=real, _name=name, **k: order.append(_name) or _real(*a, **k))
    video = str(assets["videos"] / "clip1.mp4")
    early = videomae_here("classify", video, "--model", str(assets["classifier"]), "--format", "jsonl",
                          "--num-workers", "1")
    assert early.returncode == 0, early.stderr
    assert order == ["start_decoding", "load_classifier"]
    order.clear()
    assert videomae_here("embed", video, "--model", str(assets["classifier"]), "--out", str(tmp_path / "f.npy"),
                         "--num-workers", "1").returncode == 0
    assert order == ["start_decoding", "load_feature_model"]
    order.clear()  # decoding in this process: the same scores
    here = videomae_here("classify", video, "--model", str(assets["classifier"]), "--format", "jsonl",
                         "--num-workers", "0")
    assert json.loads(here.stdout) == json.loads(early.stdout)
    order.clear()  # an original .pth has no config.json to start from: decoding starts after loading
    assert videomae_here("classify", video, "--model", str(assets["classifier_pth"])).returncode == 0
    assert order == ["load_classifier", "start_decoding"]
