"""GPU decoding through NVIDIA DALI (`videomae[dali]`): the same frames as PyAV, errors that name
the file, and (on a GPU) H.264 files, embedding and training from it.

DALI's CPU backend decodes VP9 (not H.264), so the contract is checked here on VP9 files wherever
DALI is installed; the H.264 / NVDEC tests need a CUDA device."""

from __future__ import annotations

import threading
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from train_fixtures import GPU_DECODING

from videomae.data.dali import dali_available
from videomae.video import VideoDecodeError, count_frames, read_video, stored_size

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not dali_available(), reason="needs NVIDIA DALI (the GPU decoding "
                                                                               "extra, videomae[dali])")]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def write_vp9(path: Path, index: int, frames: int = 60, size: tuple[int, int] = (96, 64)) -> Path:
    """Smooth colour waves drifting a few pixels a frame (neighbouring frames differ clearly)."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libvpx-vp9", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"g": "24", "crf": "20", "b:v": "0"}
        for t in range(frames):
            shift = 3.0 * t + 7 * index
            rgb = np.stack([np.sin((x + shift) / 9.0), np.cos((y - shift) / 7.0), np.sin((x + y + shift) / 11.0)], -1)
            frame = av.VideoFrame.from_ndarray(((rgb + 1) * 110 + 15).astype(np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def vp9(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dali")
    return [write_vp9(folder / f"v{i}.webm", i) for i in range(3)]


@pytest.fixture(scope="module")
def decoder():
    from videomae.data.dali import DaliDecoder

    return DaliDecoder("cpu")


def test_same_frames_as_read_video_in_any_order_with_repeats(vp9, decoder):
    indices = [40, 3, 3, 17, 59, 0]
    for path in vp9:
        ours = decoder(path, indices)
        reference = read_video(path, indices)
        assert ours.shape == reference.shape and ours.dtype == torch.uint8
        diff = (ours.int() - reference.int()).abs().float()
        # DALI's CPU colour conversion differs from PyAV's by 3.5 levels on average here (15 at
        # the 99.9th percentile); a neighbouring frame differs by about 24
        assert diff.mean() < 5 and float(torch.quantile(diff.flatten()[::5], 0.999)) <= 20, path
        wrong = (decoder(path, [41]).int() - reference[:1].int()).abs().float().mean()
        assert wrong > 3 * diff.mean()


def test_a_pick_sees_read_video_s_frame_count_and_resize_matches(vp9, decoder):
    seen = []
    clip = decoder(vp9[0], lambda n: seen.append(n) or np.arange(0, n, 6), 48)
    assert seen == [count_frames(vp9[0])] == [60]
    width, height = stored_size(48, 96, 64)
    assert clip.shape == (10, height, width, 3)
    reference = read_video(vp9[0], np.arange(0, 60, 6), resize=48)
    assert (clip.float() - reference.float()).abs().mean() < 6


def test_bad_files_and_indices_name_the_file_and_the_decoder_keeps_working(vp9, decoder, tmp_path):
    bad = tmp_path / "bad.webm"
    bad.write_bytes(b"\x1a\x45\xdf\xa3" + b"\x00" * 4000)
    with pytest.raises(VideoDecodeError, match="bad.webm"):
        decoder(bad, [0])
    with pytest.raises(VideoDecodeError, match="out of range"):
        decoder(vp9[0], [60])
    with pytest.raises(VideoDecodeError, match="no frame indices"):
        decoder(vp9[0], [])
    assert decoder(vp9[1], [0, 1]).shape[0] == 2


def test_threads_each_decode_with_their_own_pipeline(vp9, decoder):
    expected = {str(p): decoder(p, [5, 25, 45]) for p in vp9}
    results: dict[str, torch.Tensor] = {}
    errors: list[BaseException] = []

    def work(path: Path) -> None:
        try:
            for _ in range(3):
                results[str(path)] = decoder(path, [5, 25, 45])
        except BaseException as err:  # noqa: BLE001 (reported below)
            errors.append(err)

    threads = [threading.Thread(target=work, args=(p,)) for p in vp9]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for path, clip in expected.items():
        assert torch.equal(results[path], clip)


@needs_cuda
def test_h264_on_the_gpu_matches_pyav_within_three_levels(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import pipeline_data

    from videomae.data.dali import DaliDecoder

    gpu = DaliDecoder(0)
    diffs = []
    for i in (0, 1, 2, 4):  # libx264 defaults: B-frames, long GOP; 4:3, 16:9 and portrait
        path = tmp_path / pipeline_data.make_video(tmp_path / f"v{i}.mp4", i, seconds=4.0)["path"]
        indices = list(range(30, 94, 4)) + [34]
        ours, reference = gpu(path, indices), read_video(path, indices)
        assert ours.is_cuda and ours.shape == reference.shape
        diff = (ours.cpu().int() - reference.int()).abs().float()
        assert diff.mean() < 1.5, path
        diffs.append(diff.flatten()[::7])
    assert float(torch.quantile(torch.cat(diffs), 0.999)) <= 3


@needs_cuda
def test_embedding_and_pretraining_with_dali(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import pipeline_data

    from videomae import VideoMAEConfig, VideoMAEImageProcessor, VideoMAEModel
    from videomae.pipeline import embed_videos
    from videomae.train import pretrain

    paths = [tmp_path / pipeline_data.make_video(tmp_path / f"v{i}.mp4", i, seconds=3.0)["path"] for i in range(3)]
    torch.manual_seed(0)
    config = VideoMAEConfig(image_size=64, patch_size=16, num_frames=8, tubelet_size=2, hidden_size=64,
                            num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)
    model = VideoMAEModel(config).cuda().eval()
    processor = VideoMAEImageProcessor(size={"shortest_edge": 64}, crop_size=64)
    cpu = list(embed_videos(paths, model, processor, num_clips=2, num_workers=2, dtype="float32"))
    gpu = list(embed_videos(paths, model, processor, num_clips=2, num_workers=3, dtype="float32", decoder="dali"))
    for a, b in zip(cpu, gpu):
        assert b.ok and float((a.output - b.output).norm() / a.output.norm()) < 0.05
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{p}\n" for p in paths * 4))
    metrics = pretrain(data=str(listing), output_dir=str(tmp_path / "run"), decoder="dali", batch_size=6, epochs=2,
                       num_workers=3, **GPU_DECODING)
    assert metrics["step"] == 4 and metrics["skipped_videos"] == {}


def test_the_training_datasets_take_it_as_their_decoder(vp9, decoder):
    """The datasets' decoder hook (used with the GPU decoders) with DALI's frames: the same clips
    as PyAV's to within the colour conversion."""
    from videomae.data import MultiViewDataset, VideoClipDataset, VideoRecord

    records = [VideoRecord(str(p), 0) for p in vp9]
    train = dict(num_frames=8, sampling_rate=2, image_size=48, short_side=56, flip=False)  # same seed, same crops
    ours, reference = VideoClipDataset(records, decoder=decoder, **train), VideoClipDataset(records, **train)
    views = dict(num_frames=8, sampling_rate=4, image_size=48, num_clips=2, num_crops=1)
    test_ours, test_reference = MultiViewDataset(records, decoder=decoder, **views), MultiViewDataset(records, **views)
    for i in range(len(records)):
        a, b = ours[(i, 0)]["pixel_values"], reference[(i, 0)]["pixel_values"]
        assert a.shape == b.shape == (1, 8, 3, 48, 48) and (a.float() - b.float()).abs().mean() < 6
        a, b = test_ours[i]["pixel_values"], test_reference[i]["pixel_values"]
        assert a.shape == b.shape == (2, 8, 3, 48, 48) and (a.float() - b.float()).abs().mean() < 6
