"""videomae.pipeline: many videos through a model, decoded in worker processes, batched
across videos, one result per video in input order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from videomae import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEModel
from videomae.data.synthetic import render_clip, write_video
from videomae.pipeline import (
    DEFAULT_SAMPLING_RATE,
    VideoClips,
    checkpoint_sampling_rate,
    classify_videos,
    clip_indices,
    default_batch_size,
    embed_videos,
    expand_videos,
    forward_clips,
    load_clips,
    read_label_names,
    run_videos,
)
from videomae.processing import VideoMAEImageProcessor
from videomae.video import read_video

TINY = dict(image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=1,
            num_attention_heads=2, intermediate_size=64)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Four videos of different lengths and sizes, and a broken one third."""
    root = tmp_path_factory.mktemp("pipeline")
    rng = np.random.default_rng(0)
    paths = []
    for i, (frames, size) in enumerate([(12, 32), (40, 48), (9, 40), (20, 32)]):
        paths.append(write_video(root / f"clip{i}.mp4", render_clip(i % 4, rng, num_frames=frames, size=size)))
    broken = root / "broken.mp4"
    broken.write_bytes(b"not a video")
    return [Path(p) for p in paths[:2]] + [broken] + [Path(p) for p in paths[2:]]


@pytest.fixture(scope="module")
def classifier() -> VideoMAEForVideoClassification:
    torch.manual_seed(0)
    return VideoMAEForVideoClassification(VideoMAEConfig(**TINY, id2label={0: "a", 1: "b", 2: "c"})).eval()


@pytest.fixture(scope="module")
def processor() -> VideoMAEImageProcessor:
    return VideoMAEImageProcessor(size={"shortest_edge": 32}, crop_size=32, image_mean=[0.45, 0.45, 0.4],
                                  image_std=[0.2, 0.25, 0.22])


def _one_by_one(path: Path, model: torch.nn.Module, processor: VideoMAEImageProcessor, num_clips: int,
                rate: int = DEFAULT_SAMPLING_RATE) -> torch.Tensor:
    """The mean softmax over clips, with the processor as transformers users call it."""
    frames = read_video(path)
    indices = clip_indices(frames.shape[0], model.config.num_frames, rate, num_clips)
    pixels = processor([frames[i].numpy() for i in indices], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        return model(pixels).logits.softmax(-1).mean(0)


def test_results_follow_the_input_order_and_failures_are_rows(videos, classifier, processor) -> None:  # noqa: ANN001
    results = list(classify_videos(videos, classifier, processor, num_clips=2, batch_size=3, num_workers=0))
    assert [r.path for r in results] == videos
    assert [r.ok for r in results] == [True, True, False, True, True]
    assert "broken.mp4" in results[2].error and results[2].clip_outputs is None
    assert all(r.num_clips == 2 for r in results if r.ok)


def test_batching_across_videos_equals_one_video_at_a_time(videos, classifier, processor) -> None:  # noqa: ANN001
    # float32 here and wherever a result is compared with the model run by hand: 'auto' is bf16 on
    # CPUs with bf16 matrix units, and bf16 results depend on the batch
    good = [v for v in videos if "broken" not in v.name]
    batched = list(classify_videos(good, classifier, processor, num_clips=3, batch_size=4, num_workers=0,
                                   dtype="float32"))
    for path, result in zip(good, batched):
        single = next(classify_videos([path], classifier, processor, num_clips=3, batch_size=1, num_workers=0,
                                      dtype="float32"))
        torch.testing.assert_close(result.clip_outputs, single.clip_outputs, rtol=1e-5, atol=1e-6)
        # and the same as the processor on whole clips (normalising after batching changes nothing)
        torch.testing.assert_close(result.output, _one_by_one(path, classifier, processor, 3), rtol=1e-5, atol=1e-6)


def test_on_the_cpu_a_batch_is_one_videos_clips_by_default(videos, processor) -> None:  # noqa: ANN001
    """So the model runs on a video as soon as it is decoded, not after the rest of a batch."""
    assert default_batch_size(torch.device("cpu"), 3) == 3 and default_batch_size(torch.device("cuda"), 3) == 8
    sizes: list[int] = []

    def forward(pixels: torch.Tensor) -> torch.Tensor:
        sizes.append(pixels.shape[0])
        return pixels.mean(dim=(1, 2, 3, 4))[:, None]

    results = list(run_videos(videos, forward, processor, clip_len=4, num_clips=3, num_workers=0))
    assert [r.ok for r in results] == [True, True, False, True, True] and sizes == [3, 3, 3, 3]
    sizes.clear()
    list(run_videos(videos, forward, processor, clip_len=4, num_clips=3, batch_size=8, num_workers=0))
    assert sizes == [8, 4]  # asked for: clips of several videos share a batch


def test_concurrent_forward_passes_keep_every_videos_rows_in_order(videos, processor) -> None:  # noqa: ANN001
    """On the CPU batches run in torch's threads at once; a later batch that finishes first must
    not put a video's clips out of order, also where a video's clips straddle two batches."""
    import threading
    import time

    threads: set[int] = set()
    calls = iter(range(1000))
    lock = threading.Lock()

    def forward(pixels: torch.Tensor) -> torch.Tensor:
        with lock:
            threads.add(threading.get_ident())
            call = next(calls)
        assert torch.get_num_threads() == 1  # one thread an op while passes run side by side
        time.sleep(0.1 if call % 2 == 0 else 0.0)  # every other batch finishes after the next one
        return pixels.flatten(1)[:, :3]

    def run() -> list[torch.Tensor | None]:
        return [r.clip_outputs for r in run_videos(videos, forward, processor, clip_len=4, num_clips=3, batch_size=2,
                                                   num_workers=0)]

    previous = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        concurrent = run()
    finally:
        torch.set_num_threads(previous)
    assert torch.get_num_threads() == previous and len(threads) > 1
    torch.set_num_threads(1)  # one pass at a time, here
    try:
        threads.clear()
        one_at_a_time = run()
    finally:
        torch.set_num_threads(previous)
    assert len(threads) == 1
    for a, b in zip(concurrent, one_at_a_time):
        assert (a is None and b is None) or torch.equal(a, b)


def test_worker_processes_give_the_same_results(videos, classifier, processor) -> None:  # noqa: ANN001
    here = list(classify_videos(videos, classifier, processor, num_clips=2, batch_size=3, num_workers=0))
    workers = list(classify_videos(videos, classifier, processor, num_clips=2, batch_size=3, num_workers=2))
    assert [r.path for r in workers] == videos
    assert [r.error for r in workers] == [r.error for r in here]
    for a, b in zip(here, workers):
        if a.ok:
            torch.testing.assert_close(a.clip_outputs, b.clip_outputs)


def test_top_k_and_label_names(videos, classifier, processor, tmp_path) -> None:  # noqa: ANN001
    names = tmp_path / "names.txt"
    names.write_text("cat\ndog\n\nbird\n")
    id2label = read_label_names(names, 3)
    assert id2label == {0: "cat", 1: "dog", 2: "bird"}
    [result] = classify_videos(videos[:1], classifier, processor, num_clips=1, num_workers=0, id2label=id2label)
    top = result.top_k(5)
    assert len(top) == 3 and [s for _, _, s in top] == sorted((s for _, _, s in top), reverse=True)
    assert {label for label, _, _ in top} == {"cat", "dog", "bird"}
    assert sum(s for _, _, s in top) == pytest.approx(1.0, abs=1e-5)
    names.write_text("cat\ndog\n")
    with pytest.raises(ValueError, match="2 class names, but the model has 3 outputs"):
        read_label_names(names, 3)


def test_the_checkpoints_sampling_rate_is_the_default(videos, classifier, processor, tmp_path) -> None:  # noqa: ANN001
    path = videos[1]  # 40 frames: rates 2 and 4 take different frames
    assert checkpoint_sampling_rate(classifier.config) is None
    config = classifier.config.copy()
    config.extra["sampling_rate"] = 2
    classifier.save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(config.to_json_string())
    model = VideoMAEForVideoClassification.from_pretrained(tmp_path)
    assert checkpoint_sampling_rate(model.config) == 2
    [recorded] = classify_videos([path], model, processor, num_clips=2, num_workers=0, dtype="float32")
    torch.testing.assert_close(recorded.output, _one_by_one(path, classifier, processor, 2, rate=2))
    [given] = classify_videos([path], model, processor, sampling_rate=4, num_clips=2, num_workers=0, dtype="float32")
    assert not torch.allclose(given.output, recorded.output)


def test_embed_videos_is_the_mean_of_encoder_tokens(videos, processor) -> None:  # noqa: ANN001
    torch.manual_seed(1)
    encoder = VideoMAEModel(VideoMAEConfig(**TINY)).eval()
    results = list(embed_videos(videos, encoder, processor, num_clips=2, batch_size=3, num_workers=0, dtype="float32"))
    assert [r.ok for r in results] == [True, True, False, True, True]
    pixels = load_clips(videos[0], processor, 4, DEFAULT_SAMPLING_RATE, 2)
    with torch.no_grad():
        expected = encoder(pixels).last_hidden_state.mean(1).mean(0)
    assert results[0].output.shape == (TINY["hidden_size"],)
    torch.testing.assert_close(results[0].output, expected, rtol=1e-5, atol=1e-6)


def test_a_decoder_plugs_in(videos, classifier, processor) -> None:  # noqa: ANN001
    """The hook a GPU decoder would use: same signature as read_video."""
    calls = []

    def decoder(path: Path, indices) -> torch.Tensor:  # noqa: ANN001
        calls.append(path)
        return read_video(path, indices)

    default = list(classify_videos(videos[:2], classifier, processor, num_clips=2, num_workers=0))
    plugged = list(classify_videos(videos[:2], classifier, processor, num_clips=2, num_workers=0, decoder=decoder))
    assert calls == videos[:2]
    for a, b in zip(default, plugged):
        torch.testing.assert_close(a.clip_outputs, b.clip_outputs)


def test_items_are_uint8_clips_and_errors_are_values(videos, processor) -> None:  # noqa: ANN001
    dataset = VideoClips(videos, processor, clip_len=4, sampling_rate=4, num_clips=3)
    item = dataset[1]
    assert item.index == 1 and item.error is None
    assert item.clips.dtype == torch.uint8 and item.clips.shape == (3, 4, 3, 32, 32)
    bad = dataset[2]
    assert bad.clips is None and bad.error.startswith(str(videos[2]))


def test_progress_bar_counts_videos_per_second(videos, classifier, processor, capsys) -> None:  # noqa: ANN001
    list(classify_videos(videos[:2], classifier, processor, num_clips=1, num_workers=0, progress=True))
    err = capsys.readouterr().err
    assert "2/2" in err and "video/s" in err


def test_decoder_resize_gives_the_same_clips_within_a_few_levels(videos, processor) -> None:  # noqa: ANN001
    """The fast path (the decoder scales while converting to RGB) cuts the same clips as the
    processor's resize, to within FFmpeg's and PIL's bilinear filters' difference."""
    exact = VideoClips(videos, processor, clip_len=4, sampling_rate=2, num_clips=2)
    fast = VideoClips(videos, processor, clip_len=4, sampling_rate=2, num_clips=2, decoder_resize=True)
    assert fast.short_side == 32 and exact.short_side is None
    for index in (0, 1, 3):  # 32, 48 (downscaled) and 40 px videos
        a, b = exact[index].clips, fast[index].clips
        assert a.shape == b.shape and b.dtype == torch.uint8
        diff = (a.int() - b.int()).abs().float()
        assert diff.mean() < 3 and diff.quantile(0.99) <= 16, (index, diff.mean(), diff.max())
    assert fast[2].clips is None and fast[2].error.startswith(str(videos[2]))
    # a decoder of one's own, or a resize the decoder cannot do, keeps the processor's resize
    own = VideoClips(videos, processor, 4, 2, 1, decoder=lambda p, i: read_video(p, i), decoder_resize=True)
    assert own.short_side is None
    square = VideoMAEImageProcessor(size={"height": 32, "width": 32}, crop_size=32)
    assert VideoClips(videos, square, 4, 2, 1, decoder_resize=True).short_side is None


def test_threaded_decoding_gives_the_items_in_order(videos, processor) -> None:  # noqa: ANN001
    """The thread path (the GPU decoder's) yields what decoding in turn yields, failures included."""
    from videomae.pipeline import decoded_videos

    dataset = VideoClips(videos, processor, clip_len=4, sampling_rate=2, num_clips=2)
    in_turn = list(decoded_videos(dataset, 0))
    threaded = list(decoded_videos(dataset, 3, threads=True))
    assert [v.index for v in threaded] == list(range(len(videos)))
    for a, b in zip(in_turn, threaded):
        assert a.error == b.error
        assert (a.clips is None and b.clips is None) or torch.equal(a.clips, b.clips)


class _SlowFirst:
    """read_video, with the first video 1.5 s slower: a video that holds back its worker."""

    def __init__(self, first: Path) -> None:
        self.first = first

    def __call__(self, path: Path, indices):  # noqa: ANN001,ANN204
        import time

        if path == self.first:
            time.sleep(1.5)
        return read_video(path, indices)


@pytest.mark.parametrize("threads", [False, True])
def test_a_slow_video_holds_back_only_its_own_worker(videos, classifier, processor, threads) -> None:  # noqa: ANN001
    """Out of order, the other videos come while the first one decodes (in order, every worker
    stops two items ahead of it); run_videos still gives the results in input order."""
    from videomae.pipeline import decoded_videos

    dataset = VideoClips(videos, processor, clip_len=4, sampling_rate=2, num_clips=1, decoder=_SlowFirst(videos[0]))
    arrived = [v.index for v in decoded_videos(dataset, 2, threads=threads, ordered=False)]
    assert sorted(arrived) == list(range(len(videos))) and arrived.index(0) >= 2  # in order: first
    assert [v.index for v in decoded_videos(dataset, 2, threads=threads)] == list(range(len(videos)))
    results = list(classify_videos(videos, classifier, processor, num_clips=1, num_workers=2,
                                   decoder=_SlowFirst(videos[0]), dtype="float32"))
    assert [r.path for r in results] == videos
    assert results[2].error is not None and all(r.ok for i, r in enumerate(results) if i != 2)


def test_out_of_order_decoding_on_a_torch_without_in_order(videos, processor, monkeypatch) -> None:  # noqa: ANN001
    """torch < 2.6 has no DataLoader in_order: the workers get a deeper queue instead."""
    import types

    import videomae.pipeline as pipeline

    dataset = VideoClips(videos, processor, clip_len=4, sampling_rate=2, num_clips=1)
    loader = pipeline.decoded_videos(dataset, 2, ordered=False)
    assert getattr(loader, "in_order", False) is False and loader.prefetch_factor == 2
    monkeypatch.setattr(pipeline, "inspect", types.SimpleNamespace(signature=lambda _: types.SimpleNamespace(
        parameters={})))  # the module's own view of DataLoader's signature, as on torch 2.4
    older = pipeline.decoded_videos(dataset, 2, ordered=False)
    assert older.prefetch_factor == 4 and getattr(older, "in_order", True) is True
    assert sorted(v.index for v in older) == list(range(len(videos)))


@pytest.mark.parametrize("decoder", ["nvdec"])
def test_a_gpu_decoder_without_a_gpu_is_a_clear_error(videos, classifier, processor, decoder) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match=f"{decoder}.*CUDA"):
        list(classify_videos(videos, classifier, processor, decoder=decoder))
    with pytest.raises(ValueError, match="decoder must be"):
        list(classify_videos(videos, classifier, processor, decoder="opencv"))


def test_lists_of_videos_are_read_where_allowed(videos, tmp_path) -> None:  # noqa: ANN001
    listing = tmp_path / "videos.txt"
    listing.write_text(f"{videos[0]} 3\n# a comment\n{videos[1].name}\n")  # labels ignored; relative to the list
    (tmp_path / videos[1].name).write_bytes(b"")
    assert expand_videos([listing], allow_folders=True, allow_lists=True) == [videos[0], tmp_path / videos[1].name]
    assert expand_videos([listing], allow_folders=True) == [listing]  # classify: a file is a video
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    table = tmp_path / "paths.parquet"
    pq.write_table(pa.table({"clip": [0, 1], "video": [str(videos[3]), "sub/x.mp4"]}), table)
    assert expand_videos([table], allow_folders=False, allow_lists=True) == [videos[3], tmp_path / "sub/x.mp4"]
    pq.write_table(pa.table({"name": ["a.mp4"]}), table)
    with pytest.raises(ValueError, match="no column of paths"):
        expand_videos([table], allow_folders=False, allow_lists=True)


def test_forward_clips_in_chunks_equals_one_pass(classifier, processor) -> None:  # noqa: ANN001
    clips = torch.randint(0, 256, (5, 4, 3, 32, 32), dtype=torch.uint8)
    logits = lambda pixels: classifier(pixels).logits  # noqa: E731
    whole = forward_clips(clips, logits, processor, torch.device("cpu"), torch.float32)
    chunked = forward_clips(clips, logits, processor, torch.device("cpu"), torch.float32, batch_size=2)
    assert whole.shape == (5, 3) and whole.dtype == torch.float32
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-6)


def test_decoding_started_ahead_gives_the_same_results(videos, classifier, processor) -> None:  # noqa: ANN001
    from videomae.pipeline import clip_settings, start_decoding

    clip_len, rate = clip_settings(classifier.config)
    decoding = start_decoding(videos, processor, clip_len=clip_len, sampling_rate=rate, num_clips=2, num_workers=1)
    ahead = list(classify_videos(videos, classifier, processor, num_clips=2, decoding=decoding))
    plain = list(classify_videos(videos, classifier, processor, num_clips=2, num_workers=0))
    assert [r.ok for r in ahead] == [r.ok for r in plain]
    for a, b in zip(ahead, plain):
        if a.ok:
            torch.testing.assert_close(a.output, b.output)
    other = start_decoding(videos[:2], processor, clip_len=clip_len, sampling_rate=rate, num_clips=2, num_workers=0)
    with pytest.raises(ValueError, match="other videos"):
        list(classify_videos(videos, classifier, processor, decoding=other))
