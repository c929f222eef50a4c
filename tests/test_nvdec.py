"""GPU decoding (NVDEC through PyNvVideoCodec): the same frames as PyAV, and training from it.
Skipped without a CUDA device and PyNvVideoCodec (`pip install videomae[gpu]`)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from train_fixtures import GPU_DECODING

from videomae.data.nvdec import nvdec_available
from videomae.video import VideoDecodeError, read_video

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not nvdec_available(), reason="needs CUDA and PyNvVideoCodec")]

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Textured, moving H.264 files at constant frame rate (libx264 defaults: B-frames, long GOP)."""
    import pipeline_data

    folder = tmp_path_factory.mktemp("nvdec")
    return [Path(folder) / pipeline_data.make_video(Path(folder) / f"v{i}.mp4", i, seconds=4.0)["path"]
            for i in (0, 1, 2, 4)]


def test_nvdec_frames_are_pyav_frames_within_three_levels(videos):
    from videomae.data.nvdec import NvdecDecoder

    decoder = NvdecDecoder(0)
    rng = np.random.default_rng(0)
    diffs = []
    for path in videos:
        start = int(rng.integers(0, 120 - 64))
        indices = list(range(start, start + 64, 4)) + [start + 4]  # any order, repeats allowed
        gpu = decoder(str(path), indices)
        cpu = read_video(path, indices)
        assert gpu.shape == cpu.shape and gpu.dtype == torch.uint8 and gpu.is_cuda
        diff = (gpu.cpu().int() - cpu.int()).abs()
        diffs.append(diff.flatten().float())
        # a wrong frame (off by one at 30 fps with motion) differs by tens of levels on average
        assert diff.float().mean() < 1.5, path
    every = torch.cat(diffs)
    assert float(torch.quantile(every[::7], 0.999)) <= 3


def test_nvdec_resizes_like_the_cpu_path_and_reports_bad_files(videos, tmp_path):
    from videomae.data.nvdec import NvdecDecoder

    decoder = NvdecDecoder(0)
    clip = decoder(str(videos[0]), lambda n: np.arange(0, 16), 256)
    reference = read_video(videos[0], np.arange(0, 16), resize=256)
    assert clip.shape == reference.shape
    assert (clip.cpu().float() - reference.float()).abs().mean() < 3
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 5000)
    with pytest.raises(VideoDecodeError, match="bad.mp4"):
        decoder(str(bad), [0])
    with pytest.raises(VideoDecodeError, match="out of range"):
        decoder(str(videos[0]), [10_000])
    assert decoder(str(videos[1]), [0, 1]).shape[0] == 2  # the decoder still works after failures


def test_pretraining_with_nvdec_runs_and_learns(videos, tmp_path):
    from videomae.train import pretrain
    from videomae.train.metrics import read_metrics

    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{p}\n" for p in videos * 4))
    metrics = pretrain(data=str(listing), output_dir=str(tmp_path / "run"), decoder="nvdec", batch_size=8, epochs=4,
                       num_workers=4, **GPU_DECODING)
    assert metrics["step"] == 8 and metrics["skipped_videos"] == {}
    losses = [r["loss"] for r in read_metrics(tmp_path / "run") if r["kind"] == "train"]
    assert len(losses) == 8 and all(np.isfinite(losses))


def test_segment_sampling_decodes_the_same_frames_on_nvdec(videos):
    """Segment sampling shares the datasets' index code with dense clips, so NVDEC serves it too."""
    from videomae.data import MultiViewDataset, VideoClipDataset, VideoRecord
    from videomae.data.nvdec import NvdecDecoder

    records = [VideoRecord(str(p), 0) for p in videos]
    views = dict(num_frames=16, sampling_rate=2, image_size=64, num_clips=2, num_crops=1, sampling="segments")
    gpu = MultiViewDataset(records, decoder=NvdecDecoder(0), **views)
    cpu = MultiViewDataset(records, **views)
    for i in range(len(records)):
        on_gpu, on_cpu = gpu[i]["pixel_values"], cpu[i]["pixel_values"]
        assert on_gpu.is_cuda and on_gpu.shape == on_cpu.shape == (2, 16, 3, 64, 64)
        assert (on_gpu.cpu().float() - on_cpu.float()).abs().mean() < 3
    train = VideoClipDataset(records, 16, 2, 64, 72, flip=False, decoder=NvdecDecoder(0), sampling="segments")
    clip = train[(0, 0)]["pixel_values"]
    assert clip.is_cuda and clip.shape == (1, 16, 3, 64, 64)


def test_embedding_with_nvdec_matches_pyav(videos):
    """`embed_videos(decoder="nvdec")`: threads of this process decode on the GPU; the features
    are the PyAV path's to within the decoders' colour difference."""
    import torch

    from videomae import VideoMAEConfig, VideoMAEImageProcessor, VideoMAEModel
    from videomae.pipeline import embed_videos

    torch.manual_seed(0)
    config = VideoMAEConfig(image_size=64, patch_size=16, num_frames=8, tubelet_size=2, hidden_size=64,
                            num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)
    model = VideoMAEModel(config).cuda().eval()
    processor = VideoMAEImageProcessor(size={"shortest_edge": 64}, crop_size=64)
    bad = videos[0].parent / "broken.mp4"
    bad.write_bytes(b"not a video")
    paths = [*videos, bad]
    cpu = list(embed_videos(paths, model, processor, num_clips=2, num_workers=2, dtype="float32"))
    gpu = list(embed_videos(paths, model, processor, num_clips=2, num_workers=4, dtype="float32", decoder="nvdec"))
    assert [r.path for r in gpu] == [r.path for r in cpu]
    assert gpu[-1].error is not None and str(bad) in gpu[-1].error
    for a, b in zip(cpu[:-1], gpu[:-1]):
        assert float((a.output - b.output).norm() / a.output.norm()) < 0.05
