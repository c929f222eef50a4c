"""Datasets, lists, the resumable sampler, collation (masks, failures) and Mixup / CutMix."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from train_fixtures import make_corrupt_videos, make_motion_videos, one_thread  # noqa: F401 (one_thread: autouse fixture)

from videomae.data import (
    DecodeFailure,
    MaskGenerator,
    Mixup,
    MultiViewDataset,
    ResumableSampler,
    TrainCollate,
    VideoClipDataset,
    VideoRecord,
    eval_collate,
    find_videos,
    load_records,
    read_video_list,
    soft_targets,
)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    return make_motion_videos(tmp_path_factory.mktemp("motion"), per_class=3)


# --------------------------------------------------------------------------- sources
def test_space_separated_list_with_root_comments_and_unlabeled_lines(tmp_path):
    listing = tmp_path / "train.txt"
    listing.write_text("# comment\nbowling/a b.mp4 3\n\n/abs/c.mp4 0\nno_label.mp4\nd.avi -1\n")
    records, names = read_video_list(listing, root="/data")
    assert [(r.path, r.label) for r in records] == [
        ("/data/bowling/a b.mp4", 3), ("/abs/c.mp4", 0), ("/data/no_label.mp4", -1), ("/data/d.avi", -1)]
    assert names is None
    records, _ = read_video_list(listing)  # default root: the list's folder
    assert records[0].path == str(tmp_path / "bowling/a b.mp4")


def test_csv_with_header_and_class_names(tmp_path):
    listing = tmp_path / "train.csv"
    listing.write_text("label,path\nswim,x/1.mp4\nrun,x/2.mp4\nswim,x/3.mp4\n")
    records, names = read_video_list(listing)
    assert names == ["run", "swim"]  # sorted names when labels are names
    assert [r.label for r in records] == [1, 0, 1]
    assert records[1].path == str(tmp_path / "x/2.mp4")
    records, names = read_video_list(listing, class_names=["swim", "run"])
    assert [r.label for r in records] == [0, 1, 0] and names == ["swim", "run"]
    numeric = tmp_path / "numeric.csv"
    numeric.write_text("video,target\n/v/1.mp4,4\n")
    assert [(r.path, r.label) for r in read_video_list(numeric)[0]] == [("/v/1.mp4", 4)]


def test_class_folders_and_recursive_unlabeled_folders(videos, tmp_path):
    (videos / "left" / "notes.txt").write_text("not a video")
    records, names = load_records(videos, labeled=True)
    assert names == ["left", "right"]
    assert [r.label for r in records] == [0, 0, 0, 1, 1, 1]
    assert all(r.path.endswith(".mp4") for r in records)
    unlabeled, _ = load_records(videos, labeled=False)
    assert len(unlabeled) == 6 and {r.label for r in unlabeled} == {-1}
    assert find_videos(videos) == sorted(find_videos(videos))
    reordered, _ = load_records(videos, labeled=True, class_names=["right", "left"])
    assert [r.label for r in reordered] == [1, 1, 1, 0, 0, 0]
    unlabeled_list = tmp_path / "l.txt"
    unlabeled_list.write_text("a.mp4\n")
    with pytest.raises(ValueError, match="no label"):
        load_records(unlabeled_list, labeled=True)
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        load_records(tmp_path / "missing", labeled=False)


# --------------------------------------------------------------------------- sampler
def test_sampler_order_is_a_function_of_seed_and_epoch():
    a = ResumableSampler(20, seed=3)
    b = ResumableSampler(20, seed=3)
    a.set_epoch(1)
    b.set_epoch(1)
    assert list(a) == list(b)
    b.set_epoch(2)
    assert [i for i, _ in a] != [i for i, _ in b]
    assert sorted(i for i, _ in a) == list(range(20))
    assert {e for _, e in b} == {2}


def test_sampler_starts_mid_epoch_and_splits_over_ranks():
    full = ResumableSampler(22, seed=0)
    full.set_epoch(4)
    order = [i for i, _ in full]
    tail = ResumableSampler(22, seed=0)
    tail.set_epoch(4, start=8)
    assert [i for i, _ in tail] == order[8:] and len(tail) == 14
    ranks = [ResumableSampler(22, num_replicas=2, rank=r, seed=0) for r in range(2)]
    for s in ranks:
        s.set_epoch(4)
    per_rank = [[i for i, _ in s] for s in ranks]
    assert len(per_rank[0]) == len(per_rank[1]) == 11
    # global batch 4 = 2 per rank: step k of the 2-process run sees step k of the 1-process run
    for k in range(5):
        assert sorted(per_rank[0][2 * k:2 * k + 2] + per_rank[1][2 * k:2 * k + 2]) == sorted(order[4 * k:4 * k + 4])
    padded = [ResumableSampler(5, num_replicas=2, rank=r, shuffle=False, drop_last=False) for r in range(2)]
    assert [[i for i, _ in s] for s in padded] == [[0, 2, 4], [1, 3, 0]]


# --------------------------------------------------------------------------- datasets
def test_training_clips_are_reproducible_per_key(videos):
    records, _ = load_records(videos, labeled=True)
    dataset = VideoClipDataset(records, num_frames=4, sampling_rate=2, image_size=32, short_side=40, num_sample=3)
    item = dataset[(2, 5)]
    assert item["pixel_values"].shape == (3, 4, 3, 32, 32) and item["pixel_values"].dtype == torch.uint8
    assert item["label"] == 0 and item["index"] == 2 and item["epoch"] == 5
    assert torch.equal(dataset[(2, 5)]["pixel_values"], item["pixel_values"])  # same key, same clips
    assert not torch.equal(dataset[(2, 6)]["pixel_values"], item["pixel_values"])  # next epoch, new clips
    clips = item["pixel_values"].float()
    assert not torch.equal(clips[0], clips[1])  # repeated augmentation: different clips of one video
    rrc = VideoClipDataset(records, 4, 2, 32, crop="random_resized", flip=False)
    assert rrc[0]["pixel_values"].shape == (1, 4, 3, 32, 32)


def test_multi_view_evaluation_items(videos):
    records, _ = load_records(videos, labeled=True)
    dataset = MultiViewDataset(records, num_frames=4, sampling_rate=2, image_size=24, num_clips=2, num_crops=3)
    item = dataset[4]
    assert item["pixel_values"].shape == (6, 4, 3, 24, 24) and item["label"] == 1
    batch = eval_collate([item, dataset[0]])
    assert batch["pixel_values"].shape == (2, 6, 4, 3, 24, 24)
    assert batch["labels"].tolist() == [1, 0] and batch["index"].tolist() == [4, 0]


def test_corrupt_videos_become_failures_that_collate_drops_and_reports(videos, tmp_path):
    bad = make_corrupt_videos(tmp_path / "bad", videos / "left" / "00.mp4")
    records, _ = load_records(tmp_path / "bad", labeled=False)
    good, _ = load_records(videos, labeled=False)
    dataset = VideoClipDataset(good[:2] + records, 4, 2, 32, 40)
    items = [dataset[i] for i in range(len(dataset))]
    failures = {item.path: item.reason for item in items if isinstance(item, DecodeFailure)}
    assert set(failures) == {str(p) for p in bad.values()}
    assert "empty" in failures[str(bad["empty"])]
    collate = TrainCollate((4, 3, 32, 32), MaskGenerator((2, 4, 4), 0.75), seed=0)
    batch = collate(items)
    assert batch["pixel_values"].shape[0] == 2 and batch["weight"] == 1.0 and batch["num_videos"] == 5
    assert sorted(p for p, _ in batch["failures"]) == sorted(failures)
    empty = collate([items[2], items[3]])  # nothing decodable: a zero-weight stand-in clip
    assert empty["weight"] == 0.0 and empty["pixel_values"].shape == (1, 4, 3, 32, 32) and empty["num_videos"] == 2
    assert empty["bool_masked_pos"].shape == (1, 32)
    # through worker processes: the failures come back inside the batches
    loader = DataLoader(dataset, batch_size=3, num_workers=2, collate_fn=collate)
    seen = [path for b in loader for path, _ in b["failures"]]
    assert sorted(seen) == sorted(failures)


def test_masks_depend_on_the_sample_not_the_batch(videos):
    records, _ = load_records(videos, labeled=False)
    dataset = VideoClipDataset(records, 4, 2, 32, 40, num_sample=2)
    collate = TrainCollate((4, 3, 32, 32), MaskGenerator((2, 4, 4), 0.75, "tube"), seed=7)
    together = collate([dataset[(0, 1)], dataset[(1, 1)]])["bool_masked_pos"]
    alone = collate([dataset[(1, 1)]])["bool_masked_pos"]
    assert together.shape == (4, 32)
    assert torch.equal(together[2:], alone)
    assert (together.sum(dim=1) == 24).all()  # 12 of 16 positions per frame, on both frames
    per_frame = together.reshape(4, 2, 16)
    assert torch.equal(per_frame[:, 0], per_frame[:, 1])  # tubes: the same positions in time
    assert not torch.equal(together[0], together[1])  # each clip of a video has its own mask
    random_masks = MaskGenerator((2, 4, 4), 0.75, "random")(8, torch.Generator().manual_seed(0))
    assert (random_masks.sum(dim=1) == 24).all()


def test_decoder_masks_are_drawn_beside_the_encoder_masks_from_the_samples_generator():
    from videomae.data.collate import merge_batches
    from videomae.data.sampler import MASK, sample_seed
    from videomae.masking import running_cell_mask, tube_mask

    samples = [{"pixel_values": torch.zeros(2, 4, 3, 32, 32, dtype=torch.uint8), "label": 0, "index": i, "epoch": 1}
               for i in (3, 5)]
    collate = TrainCollate((4, 3, 32, 32), MaskGenerator((2, 4, 4), 0.9, "tube", decoder_mask_ratio=0.5), seed=7)
    batch = collate(samples)
    g = torch.Generator().manual_seed(sample_seed(7, 1, 5, MASK))  # sample 5: encoder mask, then decoder mask
    assert torch.equal(batch["bool_masked_pos"][2:], tube_mask((2, 4, 4), 0.9, 2, g))
    assert torch.equal(batch["decoder_masked_pos"][2:], running_cell_mask((2, 4, 4), 0.5, 2, g))
    assert batch["decoder_masked_pos"].shape == (4, 32) and (batch["decoder_masked_pos"].sum(1) == 16).all()
    merged = merge_batches([batch, collate(samples[:1])])
    assert torch.equal(merged["decoder_masked_pos"], torch.cat([batch["decoder_masked_pos"],
                                                                 batch["decoder_masked_pos"][:2]]))
    assert "decoder_masked_pos" not in TrainCollate((4, 3, 32, 32), MaskGenerator((2, 4, 4), 0.9))(samples)
    with pytest.raises(ValueError, match="0.25, 0.5 or 0.75"):
        MaskGenerator((2, 4, 4), 0.9, decoder_mask_ratio=0.1)


class FrameIdDecoder:
    """A stand-in decoder of a `length`-frame video (the datasets' decoder contract): channel 0
    rises left to right and channel 1 is 10 x the frame index, so a clip shows which frames it
    holds and whether it was flipped."""

    def __init__(self, length: int) -> None:
        self.length = length

    def __call__(self, path, pick, short_side):
        indices = torch.as_tensor(np.asarray(pick(self.length)))
        height = short_side or 32
        width = height * 3 // 2
        frames = torch.zeros(len(indices), height, width, 3, dtype=torch.uint8)
        frames[..., 0] = torch.linspace(0, 250, width).round().to(torch.uint8)
        frames[..., 1] = (indices * 10).to(torch.uint8).view(-1, 1, 1)
        return frames


def frame_ids(clip: torch.Tensor) -> list[int]:
    """(T, C, H, W) uint8 of `FrameIdDecoder` frames -> the frame index of each frame."""
    return [round(float(frame[1].float().mean()) / 10) for frame in clip]


def left_to_right(clip: torch.Tensor) -> bool:
    """Whether channel 0 still rises from the left edge to the right edge: not flipped."""
    ramp = clip[:, 0].float().mean(dim=(0, 1))  # (W,)
    return bool(ramp[-1] > ramp[0])


def test_segment_sampling_in_the_datasets_takes_the_ssv2_frames():
    records = [VideoRecord(f"v{i}.mp4", 0) for i in range(6)]
    decoder = FrameIdDecoder(24)  # 4 segments of 6 frames
    train = VideoClipDataset(records, 4, 2, 32, 40, flip=False, num_sample=2, decoder=decoder, sampling="segments")
    seen = set()
    for i in range(len(records)):
        for clip in train[(i, 0)]["pixel_values"]:
            ids = frame_ids(clip)
            assert all(6 * s <= f < 6 * (s + 1) for s, f in enumerate(ids)), ids
            seen.add(tuple(ids))
    assert len(seen) > 6  # random within segments, a new draw per clip
    assert frame_ids(train[(0, 0)]["pixel_values"][0]) == frame_ids(train[(0, 0)]["pixel_values"][0])
    views = MultiViewDataset(records, 4, 2, 32, num_clips=2, num_crops=3, decoder=decoder, sampling="segments")
    item = views[0]["pixel_values"]  # (2 clips x 3 crops, T, C, H, W)
    assert [frame_ids(v) for v in item] == [[0, 6, 12, 18]] * 3 + [[3, 9, 15, 21]] * 3  # starts, midpoints
    assert all(left_to_right(v) for v in item)  # evaluation never flips
    dense = MultiViewDataset(records, 4, 2, 32, num_clips=2, num_crops=1, decoder=decoder)
    assert [frame_ids(v) for v in dense[0]["pixel_values"]] == [[0, 2, 4, 6], [16, 18, 20, 22]]
    with pytest.raises(ValueError, match="sampling must be one of"):
        VideoClipDataset(records, 4, 2, 32, sampling="tsn")
    # segments span the whole video, so a sampling rate the frame stride does not divide is no error
    assert MultiViewDataset(records, 4, 3, 32, frame_stride=2, sampling="segments").stored_rate == 3


def test_the_ssv2_protocol_never_flips_a_training_clip():
    from videomae.config import VideoMAEConfig
    from videomae.train import FinetuneOptions
    from videomae.train.entrypoints import _train_dataset

    records = [VideoRecord(f"v{i}.mp4", 0) for i in range(12)]
    config = VideoMAEConfig(image_size=32, patch_size=8, num_frames=4)

    def clips(protocol: str) -> list[torch.Tensor]:
        options = FinetuneOptions.load(protocol=protocol)
        dataset = _train_dataset(records, config, options, torch.device("cpu"), sampling=options.sampling)
        dataset.decoder = FrameIdDecoder(24)
        return [clip for i in range(len(records)) for clip in dataset[(i, 0)]["pixel_values"]]

    assert all(left_to_right(clip) for clip in clips("ssv2"))
    assert not all(left_to_right(clip) for clip in clips("kinetics"))  # the check sees a flip when there is one


# --------------------------------------------------------------------------- mixup
def test_soft_targets_smoothing():
    targets = soft_targets(torch.tensor([1, 0]), 4, smoothing=0.1)
    assert torch.allclose(targets[0], torch.tensor([0.025, 0.925, 0.025, 0.025]))
    assert torch.allclose(targets.sum(dim=1), torch.ones(2))


@pytest.mark.parametrize("mixup_alpha, cutmix_alpha", [(0.8, 0.0), (0.0, 1.0), (0.8, 1.0)])
def test_mixup_and_cutmix_mix_videos_and_targets_consistently(mixup_alpha, cutmix_alpha):
    x = torch.stack([torch.zeros(4, 3, 16, 16), torch.ones(4, 3, 16, 16)])  # (B=2, T, C, H, W)
    labels = torch.tensor([0, 1])
    mix = Mixup(num_classes=2, mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, label_smoothing=0.0)
    for seed in range(5):
        mixed, targets = mix(x, labels, np.random.default_rng(seed))
        assert torch.equal(x[1], torch.ones(4, 3, 16, 16))  # input untouched
        share = mixed[0].mean().item()  # fraction of the second video in the first
        assert targets[0, 1].item() == pytest.approx(share, abs=1e-5)
        assert torch.allclose(targets.sum(dim=1), torch.ones(2))
        if cutmix_alpha and not mixup_alpha:  # a box: the same on every frame and channel
            assert set(mixed[0].unique().tolist()) <= {0.0, 1.0}
            assert torch.equal(mixed[0, 0], mixed[0, 3])
    again = mix(x, labels, np.random.default_rng(3))
    assert torch.equal(again[0], mix(x, labels, np.random.default_rng(3))[0])
    off = Mixup(num_classes=2, mixup_alpha=0.0, cutmix_alpha=0.0, label_smoothing=0.1)
    mixed, targets = off(x, labels, np.random.default_rng(0))
    assert mixed is x and torch.allclose(targets, soft_targets(labels, 2, 0.1))
