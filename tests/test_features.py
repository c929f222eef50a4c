"""videomae.features (the feature kinds) and videomae.writers' per-clip Parquet file: clip times,
columns, row groups bounded in bytes, error rows, resuming."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from videomae import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEModel
from videomae.cli import main
from videomae.data.synthetic import render_clip, write_video
from videomae.features import feature_function
from videomae.pipeline import clip_indices, embed_videos
from videomae.processing import VideoMAEImageProcessor
from videomae.writers import ParquetClipWriter, clip_rows, clip_schema, clip_times, embed_to_parquet, rows_table, \
    write_clip_table

if os.environ.get("CI") != "true":  # CI installs pyarrow (the features extra, scripts/test.sh)
    pytest.importorskip("pyarrow", reason="the features extra: pip install 'videomae[features]'")
import pyarrow.parquet as pq  # noqa: E402

TINY = dict(image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=1,
            num_attention_heads=2, intermediate_size=64)
RUN = dict(num_workers=0, batch_size=3, dtype="float32")  # compared with float32 (auto: bf16 on some CPUs)


@pytest.fixture(scope="module")
def classifier() -> VideoMAEForVideoClassification:
    torch.manual_seed(0)
    return VideoMAEForVideoClassification(VideoMAEConfig(**TINY, num_labels=3)).eval()


@pytest.fixture(scope="module")
def processor() -> VideoMAEImageProcessor:
    return VideoMAEImageProcessor(size={"shortest_edge": 32}, crop_size=32)


@pytest.fixture
def videos(tmp_path: Path) -> list[Path]:
    """Two videos (12 frames at 16 fps, 24 at 8 fps) with a broken file between them."""
    rng = np.random.default_rng(0)
    first = write_video(tmp_path / "a.mp4", render_clip(0, rng, num_frames=12, size=32), fps=16)
    second = write_video(tmp_path / "c.mp4", render_clip(1, rng, num_frames=24, size=32), fps=8)
    broken = tmp_path / "b.mp4"
    broken.write_bytes(b"not a video")
    return [Path(first), broken, Path(second)]


# --------------------------------------------------------------------------- kinds
def test_feature_kinds_are_the_models_outputs(classifier: VideoMAEForVideoClassification) -> None:
    x = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        tokens = classifier.videomae(x).last_hidden_state  # (2, 2*4*4, 32)
        pooled, _ = classifier.forward_features(x)
        logits = classifier(x).logits
        torch.testing.assert_close(feature_function(classifier, "mean")(x), tokens.mean(1))
        torch.testing.assert_close(feature_function(classifier, "pooled")(x), pooled)
        torch.testing.assert_close(feature_function(classifier, "auto")(x), pooled)
        torch.testing.assert_close(feature_function(classifier, "logits")(x), logits)
        grid = feature_function(classifier, "tokens")(x)
    assert grid.shape == (2, 2, 4, 4, 32)  # (B, T', H', W', D)
    torch.testing.assert_close(grid[1, 1, 2, 3], tokens[1, 1 * 16 + 2 * 4 + 3])  # time-major, then rows, columns


def test_an_encoder_has_no_pooled_or_logits() -> None:
    encoder = VideoMAEModel(VideoMAEConfig(**TINY)).eval()
    x = torch.randn(1, 4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(feature_function(encoder, "auto")(x), encoder(x).last_hidden_state.mean(1))
    for kind in ("pooled", "logits"):
        with pytest.raises(ValueError, match=f"--features {kind}: needs a fine-tuned classifier"):
            feature_function(encoder, kind)


def test_clip_times_follow_the_frame_rate(videos: list[Path]) -> None:
    times = clip_times(videos[2], clip_len=4, sampling_rate=2, num_clips=3)  # 24 frames at 8 fps
    index = clip_indices(24, 4, 2, 3)
    np.testing.assert_allclose(times, np.stack([index[:, 0] / 8, (index[:, -1] + 1) / 8], axis=1))
    assert times[0, 0] == 0.0 and times[-1, 1] <= 3.0


# --------------------------------------------------------------------------- Parquet
def test_parquet_rows_columns_and_error_row(videos: list[Path], classifier, processor) -> None:  # noqa: ANN001
    out = videos[0].parent / "f.parquet"
    results = list(embed_to_parquet(videos, classifier, processor, out, model_id="tiny", kind="mean", num_clips=2,
                                    sampling_rate=2, **RUN))
    assert [r.ok for r in results] == [True, False, True]
    table = pq.read_table(out)
    assert table.column_names == ["path", "clip", "start_s", "end_s", "model", "feature_kind", "shape", "feature",
                                  "error"]
    rows = table.to_pylist()
    assert [(r["path"], r["clip"]) for r in rows] == [(str(videos[0]), 0), (str(videos[0]), 1), (str(videos[1]), None),
                                                      (str(videos[2]), 0), (str(videos[2]), 1)]
    assert "b.mp4" in rows[2]["error"] and rows[2]["feature"] is None
    assert all(r["error"] is None and r["model"] == "tiny" and r["feature_kind"] == "mean" and r["shape"] == [32]
               for i, r in enumerate(rows) if i != 2)
    expected = list(embed_videos([videos[0], videos[2]], classifier, processor, num_clips=2, sampling_rate=2,
                                 features="mean", **RUN))
    np.testing.assert_allclose(np.array([r["feature"] for r in rows[3:]]), expected[1].clip_outputs.numpy(), rtol=1e-6)
    np.testing.assert_allclose([rows[3]["start_s"], rows[3]["end_s"]], clip_times(videos[2], 4, 2, 2)[0])
    assert not out.with_name("f.parquet.parts").exists()  # merged and removed


def test_token_grid_in_float16_and_row_groups_bounded(videos: list[Path], classifier, processor) -> None:  # noqa: ANN001
    out = videos[0].parent / "tokens.parquet"
    clip_bytes = 2 * 4 * 4 * 32 * 2  # (T', H', W', D) float16
    list(embed_to_parquet([videos[0], videos[2]] * 1, classifier, processor, out, model_id="tiny", kind="tokens",
                          num_clips=3, sampling_rate=2, row_group_bytes=4 * clip_bytes, **RUN))
    reader = pq.ParquetFile(out)
    assert str(reader.schema_arrow.field("feature").type) == "list<element: halffloat>"
    # a video's 3 clips (about 3 * clip_bytes) fill a row group; the next one would exceed 4 clips' bytes
    assert [reader.metadata.row_group(i).num_rows for i in range(reader.num_row_groups)] == [3, 3]
    row = reader.read().to_pylist()[4]
    assert row["shape"] == [2, 4, 4, 32] and len(row["feature"]) == clip_bytes // 2
    with torch.no_grad():
        [result] = embed_videos([videos[2]], classifier, processor, num_clips=3, sampling_rate=2, features="tokens",
                                **RUN)
    np.testing.assert_allclose(np.array(row["feature"], np.float32).reshape(2, 4, 4, 32),
                               result.clip_outputs[1].numpy(), atol=2e-3, rtol=2e-3)


def test_rerun_skips_finished_files_and_retries_failed_ones(videos: list[Path], classifier, processor) -> None:  # noqa: ANN001
    out = videos[0].parent / "f.parquet"
    options = dict(model_id="tiny", kind="mean", num_clips=2, sampling_rate=2, **RUN)
    list(embed_to_parquet(videos[:2], classifier, processor, out, **options))
    first = pq.read_table(out).to_pylist()
    write_video(videos[1], render_clip(2, np.random.default_rng(1), num_frames=12, size=32))  # repaired
    again = list(embed_to_parquet(videos, classifier, processor, out, **options))
    assert [r.path for r in again] == [videos[1], videos[2]]  # a.mp4 was done
    rows = pq.read_table(out).to_pylist()
    assert rows[:2] == first[:2]  # kept as written
    assert [(r["path"], r["clip"], r["error"]) for r in rows[2:]] == [
        (str(videos[1]), 0, None), (str(videos[1]), 1, None), (str(videos[2]), 0, None), (str(videos[2]), 1, None)]
    assert list(embed_to_parquet(videos, classifier, processor, out, **options)) == []


def test_a_killed_run_resumes_from_its_parts(videos: list[Path], classifier, processor) -> None:  # noqa: ANN001
    out = videos[0].parent / "f.parquet"
    writer = ParquetClipWriter(out, "tiny", "mean")
    writer.add(str(videos[0]), np.ones((2, 32), np.float32), np.zeros((2, 2)))
    writer.flush()  # ... and the process is killed before close()
    assert not out.exists() and len(list(out.with_name("f.parquet.parts").iterdir())) == 1
    again = list(embed_to_parquet([videos[0], videos[2]], classifier, processor, out, model_id="tiny", kind="mean",
                                  num_clips=2, sampling_rate=2, **RUN))
    assert [r.path for r in again] == [videos[2]]
    rows = pq.read_table(out).to_pylist()
    assert [r["path"] for r in rows] == [str(videos[0])] * 2 + [str(videos[2])] * 2
    assert rows[0]["feature"] == [1.0] * 32


def test_resume_refuses_another_kind_or_model(videos: list[Path], classifier, processor) -> None:  # noqa: ANN001
    out = videos[0].parent / "f.parquet"
    list(embed_to_parquet(videos[:1], classifier, processor, out, model_id="tiny", kind="mean", num_clips=1, **RUN))
    with pytest.raises(ValueError, match="holds mean features of tiny, not logits of tiny"):
        list(embed_to_parquet(videos, classifier, processor, out, model_id="tiny", kind="logits", num_clips=1, **RUN))


def test_cli_embed_tokens_to_parquet(videos: list[Path], classifier, processor, capsys) -> None:  # noqa: ANN001
    folder = videos[0].parent / "model"
    classifier.save_pretrained(folder)
    processor.save_pretrained(folder)
    out = videos[0].parent / "t.parquet"
    code = main(["embed", str(videos[0]), str(videos[2]), "--model", str(folder), "--out", str(out), "--features",
                 "tokens", "--num-clips", "2", "--num-workers", "0", "--no-progress"])
    assert code == 0
    table = pq.read_table(out)
    assert table.num_rows == 4 and set(table["model"].to_pylist()) == {str(folder)}
    assert table["shape"].to_pylist()[0] == [2, 4, 4, 32]
    assert main(["embed", str(videos[0]), "--model", str(folder), "--out", str(out.with_suffix(".npy")),
                 "--features", "tokens"]) == 1
    assert ".parquet" in capsys.readouterr().err


def test_a_table_written_whole_in_row_groups_that_keep_videos_together(tmp_path: Path) -> None:
    rows = []
    for name, clips in (("a.mp4", 3), ("b.mp4", 2), ("c.mp4", 2)):
        rows += clip_rows(name, np.ones((clips, 8), np.float32), np.zeros((clips, 2)), None, "tiny", "mean")[0]
    rows += clip_rows("d.mp4", None, None, "d.mp4: broken", "tiny", "mean")[0]
    out = tmp_path / "shard.parquet"
    write_clip_table(rows_table(rows, clip_schema("mean")), out, row_group_bytes=4 * 8 * 4)  # 4 clips of 8 floats
    reader = pq.ParquetFile(out)
    assert [reader.metadata.row_group(i).num_rows for i in range(reader.num_row_groups)] == [3, 5]  # a | b, c, d
    assert reader.read().to_pylist()[-1]["error"] == "d.mp4: broken"
    assert [p.name for p in tmp_path.iterdir()] == ["shard.parquet"]  # the temporary file was renamed
