"""videomae.sampling: clip indices, against the rules they transcribe."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from videomae.sampling import (
    evaluation_indices,
    multi_clip_indices,
    sample_frame_indices,
    segment_view_indices,
    training_indices,
    uniform_indices,
)


def docs_sample_frame_indices(clip_len, frame_sample_rate, seg_len):
    """The helper of the transformers VideoMAE documentation, verbatim in behaviour."""
    converted_len = int(clip_len * frame_sample_rate)
    end_idx = np.random.randint(converted_len, seg_len)
    start_idx = end_idx - converted_len
    indices = np.linspace(start_idx, end_idx, num=clip_len)
    return np.clip(indices, start_idx, end_idx - 1).astype(np.int64)


def original_test_clips(clip_len, frame_sample_rate, seg_len, num_clips):
    """The original VideoMAE test protocol: strided frames, then evenly spaced clip starts."""
    all_index = list(range(0, seg_len, frame_sample_rate))
    while len(all_index) < clip_len:
        all_index.append(all_index[-1])
    temporal_step = max(1.0 * (len(all_index) - clip_len) / (num_clips - 1), 0)
    return [all_index[int(k * temporal_step) : int(k * temporal_step) + clip_len] for k in range(num_clips)]


@pytest.mark.parametrize("clip_len, rate, seg_len", [(16, 4, 300), (8, 2, 17), (16, 1, 17), (4, 8, 1000)])
def test_matches_the_docs_helper_with_numpy_global_seed(clip_len, rate, seg_len):
    for seed in range(5):
        np.random.seed(seed)
        expected = docs_sample_frame_indices(clip_len, rate, seg_len)
        np.random.seed(seed)
        np.testing.assert_array_equal(sample_frame_indices(clip_len, rate, seg_len), expected)


@pytest.mark.parametrize("make", [lambda s: torch.Generator().manual_seed(s), lambda s: np.random.default_rng(s)])
def test_generators_make_clips_reproducible(make):
    first = [sample_frame_indices(16, 4, 300, make(7)) for _ in range(3)]
    assert all(np.array_equal(first[0], other) for other in first[1:])
    different = {tuple(sample_frame_indices(16, 4, 300, make(seed))) for seed in range(10)}
    assert len(different) > 1
    again = uniform_indices(8, 100, generator=make(3))
    np.testing.assert_array_equal(uniform_indices(8, 100, generator=make(3)), again)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 32), st.integers(1, 8), st.integers(1, 600), st.integers(0, 2**31 - 1))
def test_clip_is_in_range_ordered_and_strided(clip_len, rate, seg_len, seed):
    indices = sample_frame_indices(clip_len, rate, seg_len, torch.Generator().manual_seed(seed))
    assert indices.dtype == np.int64 and indices.shape == (clip_len,)
    assert indices.min() >= 0 and indices.max() < seg_len
    assert np.all(np.diff(indices) >= 0)
    if seg_len > clip_len * rate:
        assert indices[-1] - indices[0] <= clip_len * rate - 1  # a window of converted_len frames


def test_short_video_spreads_over_everything_and_repeats():
    indices = sample_frame_indices(16, 4, 10, np.random.default_rng(0))
    assert indices[0] == 0 and indices[-1] == 9
    assert len(set(indices.tolist())) == 10  # every frame used, some twice
    np.testing.assert_array_equal(sample_frame_indices(4, 4, 1), [0, 0, 0, 0])


def test_invalid_sizes_are_rejected():
    for args in [(0, 4, 10), (16, 0, 10), (16, 4, 0), (16, -1, 10)]:
        with pytest.raises(ValueError, match="positive integer"):
            sample_frame_indices(*args)
    with pytest.raises(TypeError, match="generator"):
        sample_frame_indices(4, 2, 100, generator=3)


def test_uniform_indices_take_one_frame_per_segment():
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        indices = uniform_indices(8, 100, training=True, generator=generator)
        segment = 100 // 8
        assert all(k * segment <= i < (k + 1) * segment for k, i in enumerate(indices))
    tick = 100 / 8
    np.testing.assert_array_equal(uniform_indices(8, 100, training=False), [int(tick / 2 + tick * k) for k in range(8)])

def original_ssv2_train(num_segment, num_frames):
    """The original SSv2 loader's training indices (`loadvideo_decord`, mode train), transcribed."""
    average_duration = num_frames // num_segment
    if average_duration > 0:
        return list(np.multiply(list(range(num_segment)), average_duration)
                    + np.random.randint(average_duration, size=num_segment))
    if num_frames > num_segment:  # unreachable (num_frames > num_segment means a duration >= 1); kept as written
        return list(np.sort(np.random.randint(num_frames, size=num_segment)))
    return list(np.zeros((num_segment,)))


def original_ssv2_test(num_segment, num_frames, test_num_segment=2):
    """The original SSv2 test views: midpoints + starts, sorted, then `buffer[chunk::2]` per view."""
    tick = num_frames / float(num_segment)
    all_index = list(np.array([int(tick / 2.0 + tick * x) for x in range(num_segment)]
                              + [int(tick * x) for x in range(num_segment)]))
    while len(all_index) < num_segment * test_num_segment:
        all_index.append(all_index[-1])
    all_index = list(np.sort(np.array(all_index)))
    return [all_index[chunk::2] for chunk in range(test_num_segment)]


@pytest.mark.parametrize("num_frames", [16, 17, 47, 48, 50, 121, 300])
def test_ssv2_training_indices_match_the_original_loader(num_frames):
    for seed in range(5):
        np.random.seed(seed)
        expected = original_ssv2_train(16, num_frames)
        np.random.seed(seed)
        np.testing.assert_array_equal(uniform_indices(16, num_frames, training=True), expected)


def test_ssv2_training_takes_one_frame_inside_each_segment_reproducibly():
    duration = 50 // 16  # 3 frames a segment; the last 2 frames of the video are never drawn, as in the original
    draws = np.stack([uniform_indices(16, 50, generator=torch.Generator().manual_seed(s)) for s in range(40)])
    segment = np.arange(16)
    assert bool(((draws >= segment * duration) & (draws < (segment + 1) * duration)).all())
    assert {int(v) for v in draws[:, 0]} == {0, 1, 2}  # every frame of a segment is drawn
    np.testing.assert_array_equal(uniform_indices(16, 50, generator=torch.Generator().manual_seed(7)),
                                  uniform_indices(16, 50, generator=torch.Generator().manual_seed(7)))
    assert len({tuple(d) for d in draws}) > 30


@pytest.mark.parametrize("num_frames", [1, 5, 15, 16, 17, 31, 48, 50, 121, 300])
def test_ssv2_test_views_are_the_originals_starts_and_midpoints(num_frames):
    views = segment_view_indices(16, num_frames, 2)
    assert views.shape == (2, 16) and views.dtype == np.int64
    np.testing.assert_array_equal(views, original_ssv2_test(16, num_frames))
    tick = num_frames / 16
    np.testing.assert_array_equal(views[0], [int(tick * s) for s in range(16)])
    np.testing.assert_array_equal(views[1], [int(tick / 2.0 + tick * s) for s in range(16)])
    np.testing.assert_array_equal(uniform_indices(16, num_frames, training=False), views[1])


def test_ssv2_short_videos_are_handled_as_the_original_does():
    # fewer frames than segments: training takes frame 0 for every segment, whatever the seed
    for seed in range(3):
        np.testing.assert_array_equal(uniform_indices(16, 10, generator=np.random.default_rng(seed)), np.zeros(16))
    # evaluation repeats frames in order (10 frames over 16 segments)
    views = segment_view_indices(16, 10, 2)
    assert views.max() <= 9 and bool((np.diff(views, axis=1) >= 0).all())
    assert set(views[0].tolist()) == set(range(10))
    np.testing.assert_array_equal(segment_view_indices(4, 1, 2), np.zeros((2, 4)))


def test_sampling_rules_by_name():
    generator = torch.Generator().manual_seed(0)
    segments = training_indices("segments", 8, 4, 100, generator)
    np.testing.assert_array_equal(segments, uniform_indices(8, 100, generator=torch.Generator().manual_seed(0)))
    np.testing.assert_array_equal(training_indices("dense", 8, 4, 100, torch.Generator().manual_seed(0)),
                                  sample_frame_indices(8, 4, 100, torch.Generator().manual_seed(0)))
    np.testing.assert_array_equal(evaluation_indices("segments", 8, 4, 100, 2), segment_view_indices(8, 100, 2))
    np.testing.assert_array_equal(evaluation_indices("dense", 8, 4, 100, 5), multi_clip_indices(8, 4, 100, 5))
    for bad in ("tsn", "Segments"):
        with pytest.raises(ValueError, match="sampling must be one of"):
            training_indices(bad, 8, 4, 100)
        with pytest.raises(ValueError, match="sampling must be one of"):
            evaluation_indices(bad, 8, 4, 100, 2)
    with pytest.raises(ValueError, match="num_views"):
        segment_view_indices(8, 100, 0)


@pytest.mark.parametrize(
    "clip_len, rate, seg_len, num_clips", [(16, 4, 300, 5), (16, 4, 300, 2), (8, 2, 10, 3), (16, 4, 64, 10)]
)
def test_multi_clip_matches_the_original_protocol(clip_len, rate, seg_len, num_clips):
    clips = multi_clip_indices(clip_len, rate, seg_len, num_clips)
    assert clips.shape == (num_clips, clip_len) and clips.dtype == np.int64
    np.testing.assert_array_equal(clips, original_test_clips(clip_len, rate, seg_len, num_clips))


def test_single_clip_is_centred():
    clip = multi_clip_indices(16, 4, 300, 1)[0]
    strided = np.arange(0, 300, 4)
    start = (len(strided) - 16) // 2
    np.testing.assert_array_equal(clip, strided[start : start + 16])
