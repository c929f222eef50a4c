"""VideoMAEImageProcessor against transformers' (PIL backend): values, shapes, config files."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from PIL import Image
from video_fixtures import pattern_frames, write_video

import videomae
from videomae import BatchFeature, VideoMAEFeatureExtractor, VideoMAEImageProcessor
from videomae.sampling import multi_clip_indices
from videomae.video import read_video


logging.getLogger("transformers").setLevel(logging.ERROR)


@pytest.fixture
def Reference(transformers):  # noqa: N802 - a class
    """transformers' VideoMAEImageProcessorPil, the reference (the test is skipped without it)."""
    return transformers.VideoMAEImageProcessorPil


def _video(frames, height, width, seed=0):
    """Frames with both smooth regions and noise, so resizing differences would show."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    smooth = np.stack([(xx * 3 + yy) % 256, (yy * 5) % 256, (xx * yy // 7) % 256], axis=-1)
    noise = rng.integers(0, 256, (frames, height, width, 3))
    return np.where(rng.random((frames, height, width, 1)) < 0.4, noise, smooth[None]).astype(np.uint8)


def _levels(ours, reference, std):
    """Largest difference in 8-bit levels (normalised difference * std * 255)."""
    std = np.asarray(std, dtype=np.float64).reshape(1, 1, -1, 1, 1)
    return float((np.abs(np.asarray(ours, np.float64) - np.asarray(reference, np.float64)) * std * 255).max())


SHAPES = {
    "hd": (720, 1280),
    "landscape": (360, 640),
    "portrait": (640, 360),
    "square": (250, 250),
    "small": (100, 150),
    "odd": (97, 131),
}
PARAMS = {
    "default": {},
    "short128_crop112": {"size": {"shortest_edge": 128}, "crop_size": 112},
    "imagenet_stats": {"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]},
    "no_center_crop": {"do_center_crop": False},
    "height_width": {"size": {"height": 160, "width": 200}, "crop_size": {"height": 144, "width": 176}},
    "crop_larger_than_image": {"do_resize": False, "crop_size": 280},
    "shortest_and_longest": {"size": {"shortest_edge": 200, "longest_edge": 300}, "crop_size": 180},
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("params", PARAMS)
def test_pixel_values_match_transformers_within_one_level(shape, params, Reference):
    kwargs = PARAMS[params]
    frames = _video(2, *SHAPES[shape])
    expected = Reference(**kwargs)(list(frames), return_tensors="np").pixel_values
    ours = VideoMAEImageProcessor(**kwargs)(list(frames), return_tensors="np").pixel_values
    assert ours.shape == expected.shape and ours.dtype == expected.dtype == np.float32
    std = kwargs.get("image_std", [0.5, 0.5, 0.5])
    assert _levels(ours, expected, std) <= 1.0 + 1e-3


def test_defaults_and_config_match_transformers(Reference):
    ours, theirs = VideoMAEImageProcessor(), Reference()
    assert json.loads(ours.to_json_string()) == json.loads(theirs.to_json_string())
    custom = {"size": 128, "crop_size": 112, "image_mean": [0.1, 0.2, 0.3], "image_std": 0.3, "do_center_crop": False}
    theirs = Reference(**custom)
    ours = VideoMAEImageProcessor(**custom)
    assert json.loads(ours.to_json_string()) == json.loads(theirs.to_json_string())
    assert ours.size == {"shortest_edge": 128} and ours.crop_size == {"height": 112, "width": 112}
    assert VideoMAEFeatureExtractor is VideoMAEImageProcessor
    assert videomae.VideoMAEImageProcessor is VideoMAEImageProcessor


def test_config_round_trips_with_transformers(tmp_path, Reference):
    ours = VideoMAEImageProcessor(size={"shortest_edge": 160}, crop_size=144, image_mean=[0.485, 0.456, 0.406],
                                  image_std=[0.229, 0.224, 0.225], resample=3, do_center_crop=False)
    ours.save_pretrained(tmp_path / "ours")
    loaded = Reference.from_pretrained(tmp_path / "ours")
    assert json.loads(loaded.to_json_string()) == json.loads(ours.to_json_string())
    assert loaded.resample == 3 and loaded.size == {"shortest_edge": 160} and not loaded.do_center_crop

    theirs = Reference(size={"height": 200, "width": 180}, rescale_factor=0.5, do_normalize=False)
    theirs.save_pretrained(tmp_path / "theirs")
    back = VideoMAEImageProcessor.from_pretrained(tmp_path / "theirs")
    assert json.loads(back.to_json_string()) == json.loads(theirs.to_json_string())
    assert VideoMAEImageProcessor.from_pretrained(tmp_path / "theirs" / "preprocessor_config.json") == back
    frames = list(_video(2, 120, 90))
    np.testing.assert_allclose(
        back(frames, return_tensors="np").pixel_values, theirs(frames, return_tensors="np").pixel_values, atol=1.01
    )


def test_transformers_4_hub_config_loads(tmp_path, caplog):
    """The file MCG-NJU checkpoints carry: an int size, ImageNet statistics, the old type key."""
    config = {
        "do_center_crop": True, "do_normalize": True, "do_resize": True,
        "feature_extractor_type": "VideoMAEFeatureExtractor", "image_mean": [0.485, 0.456, 0.406],
        "image_std": [0.229, 0.224, 0.225], "resample": 2, "size": 224, "unused_option": 1,
    }
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(config))
    with caplog.at_level(logging.WARNING):
        processor = VideoMAEImageProcessor.from_pretrained(tmp_path, do_rescale=True)
    assert "unused_option" in caplog.text
    assert processor.size == {"shortest_edge": 224} and processor.crop_size == {"height": 224, "width": 224}
    assert processor.image_mean == [0.485, 0.456, 0.406]
    with pytest.raises(TypeError, match="unknown VideoMAEImageProcessor parameters \\['do_resise'\\]"):
        VideoMAEImageProcessor.from_pretrained(tmp_path, do_resise=False)


def test_from_pretrained_errors_are_clear(tmp_path, monkeypatch):
    with pytest.raises(OSError, match="no preprocessor_config.json in this folder"):
        VideoMAEImageProcessor.from_pretrained(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="could not be fetched from the Hugging Face Hub"):
        VideoMAEImageProcessor.from_pretrained("no-such-owner/no-such-videomae", local_files_only=True)
    with pytest.raises(OSError, match="no such file or folder"):
        VideoMAEImageProcessor.from_pretrained(tmp_path / "missing" / "deeper" / "folder")


def test_return_tensors_none_is_nested_lists_like_transformers(Reference):
    frames = list(_video(3, 90, 120))
    ours = VideoMAEImageProcessor()(frames).pixel_values
    theirs = Reference()(frames).pixel_values
    assert isinstance(ours, list) and len(ours) == len(theirs) == 1
    assert isinstance(ours[0], list) and len(ours[0]) == 3
    assert all(isinstance(f, np.ndarray) and f.shape == (3, 224, 224) and f.dtype == np.float32 for f in ours[0])
    assert _levels(np.stack(ours[0])[None], np.stack(theirs[0])[None], [0.5] * 3) <= 1.001


def test_uint8_video_tensor_matches_transformers_within_one_level(Reference):
    """The benchmark's input: a (T, 3, 720, 1280) uint8 tensor, channels first, as video decoders give."""
    frames = _video(4, 720, 1280, seed=3)
    expected = Reference()(list(frames), return_tensors="np").pixel_values
    tensor = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()  # (T, 3, H, W), channels-first memory
    ours = VideoMAEImageProcessor()(tensor, return_tensors="pt").pixel_values
    assert ours.shape == (1, 4, 3, 224, 224) and ours.is_contiguous()
    assert _levels(ours.numpy(), expected, [0.5] * 3) <= 1.0 + 1e-3


def test_fast_path_layouts_give_the_same_pixels():
    """Channels-first, channels-last and gapped (cropped, permuted) memory all give the same values,
    with one torch thread or two, in either output layout."""
    wide = torch.from_numpy(_video(5, 360, 700, seed=4))  # (T, H, W, 3)
    processor = VideoMAEImageProcessor()
    channels_last = wide[:, :, 20:680].contiguous().permute(0, 3, 1, 2)  # a view: channels innermost in memory
    layouts = {
        "channels_first": channels_last.contiguous(),
        "channels_last": channels_last,
        "channels_first_crop_view": wide.permute(0, 3, 1, 2).contiguous()[..., 20:680],
        "channels_last_crop_view": wide.permute(0, 3, 1, 2)[..., 20:680],
        "time_major_permuted": channels_last.permute(1, 0, 2, 3).contiguous().permute(1, 0, 2, 3),
    }
    for name, video in layouts.items():
        assert torch.equal(video, channels_last), name
        dense = video.is_contiguous() or video.is_contiguous(memory_format=torch.channels_last)
        assert dense == (name in ("channels_first", "channels_last")), name
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        expected = processor(channels_last, return_tensors="pt").pixel_values
        for count in (1, 2):
            torch.set_num_threads(count)
            for name, video in layouts.items():
                out = processor(video, return_tensors="pt").pixel_values
                torch.testing.assert_close(out, expected, rtol=0, atol=0, msg=f"{name}, {count} threads")
            last = processor(channels_last, data_format="channels_last", return_tensors="pt").pixel_values
            assert last.is_contiguous()
            torch.testing.assert_close(last, expected.permute(0, 1, 3, 4, 2), rtol=0, atol=0)
            raw = processor(channels_last, do_rescale=False, do_normalize=False, return_tensors="pt").pixel_values
            assert raw.dtype == torch.uint8 and raw.is_contiguous()
            torch.testing.assert_close(raw.float() / 127.5 - 1, expected, rtol=0, atol=1e-6)
    finally:
        torch.set_num_threads(threads)


def test_input_kinds_give_the_same_pixels():
    frames = _video(4, 96, 128)  # (T, H, W, C)
    processor = VideoMAEImageProcessor()
    expected = processor(list(frames), return_tensors="pt").pixel_values
    assert expected.shape == (1, 4, 3, 224, 224)
    kinds = {
        "pil": [Image.fromarray(f) for f in frames],
        "numpy_hwc_list": [f.copy() for f in frames],
        "numpy_chw_list": [f.transpose(2, 0, 1).copy() for f in frames],
        "tensor_chw_list": [torch.from_numpy(f).permute(2, 0, 1) for f in frames],
        "tensor_hwc_list": [torch.from_numpy(f.copy()) for f in frames],
        "list_of_tensor_views": list(torch.from_numpy(frames)),
        "list_of_reversed_views": list(torch.from_numpy(frames[::-1].copy()).flip(0)),
        "numpy_4d": frames,
        "tensor_4d_chw": torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous(),
    }
    for name, video in kinds.items():
        torch.testing.assert_close(processor(video, return_tensors="pt").pixel_values, expected, msg=name)
    batch = processor([frames, frames[::-1]], return_tensors="pt").pixel_values
    assert batch.shape == (2, 4, 3, 224, 224)
    torch.testing.assert_close(batch[0], expected[0])
    torch.testing.assert_close(batch[1], expected[0].flip(0))
    five_d = processor(torch.from_numpy(np.stack([frames, frames])), return_tensors="pt").pixel_values
    torch.testing.assert_close(five_d, batch[[0, 0]])
    lists = processor([list(frames), list(frames)], return_tensors="np").pixel_values
    assert isinstance(lists, np.ndarray) and lists.shape == (2, 4, 3, 224, 224)
    single = processor(frames[0], return_tensors="pt").pixel_values
    assert single.shape == (1, 1, 3, 224, 224)


def test_clips_sliced_from_one_tensor_match_clips_processed_alone():
    frames = torch.from_numpy(_video(6, 90, 120))  # (clips * T, H, W, 3), as read_video returns
    clips = list(frames.reshape(3, 2, 90, 120, 3))
    processor = VideoMAEImageProcessor()
    batch = processor(clips, return_tensors="pt").pixel_values
    assert batch.shape == (3, 2, 3, 224, 224)
    for k, clip in enumerate(clips):
        torch.testing.assert_close(batch[k], processor(clip.clone(), return_tensors="pt").pixel_values[0])
    reordered = processor([clips[2], clips[0]], return_tensors="pt").pixel_values  # not adjacent: copied
    torch.testing.assert_close(reordered, batch[[2, 0]])


def test_batch_of_different_sizes_matches_one_by_one():
    a, b = _video(3, 90, 160, seed=1), _video(2, 200, 120, seed=2)
    processor = VideoMAEImageProcessor()
    batch = processor([a, b]).pixel_values
    assert [len(v) for v in batch] == [3, 2]
    np.testing.assert_array_equal(np.stack(batch[0]), processor(a, return_tensors="np").pixel_values[0])
    with pytest.raises(ValueError, match="cannot be stacked"):
        processor([a, b], return_tensors="pt")


def test_gray_frames_and_alpha_with_do_convert_rgb_become_rgb(Reference):
    processor = VideoMAEImageProcessor()
    gray = _video(2, 80, 100)[..., 0]
    out = processor(list(gray), return_tensors="np").pixel_values
    reference = Reference()(list(gray[..., None]), return_tensors="np", do_convert_rgb=True)
    assert out.shape == (1, 2, 3, 224, 224)
    assert _levels(out, reference.pixel_values, [0.5] * 3) <= 1.001
    rgba = np.concatenate([_video(2, 80, 100), np.full((2, 80, 100, 1), 100, np.uint8)], axis=-1)
    theirs = Reference()([Image.fromarray(f) for f in rgba], return_tensors="np", do_convert_rgb=True)
    ours_pil = processor([Image.fromarray(f) for f in rgba], return_tensors="np", do_convert_rgb=True).pixel_values
    ours_array = processor(list(rgba), return_tensors="np", do_convert_rgb=True).pixel_values
    ours_config = VideoMAEImageProcessor(do_convert_rgb=True)(list(rgba), return_tensors="np").pixel_values
    assert _levels(ours_pil, theirs.pixel_values, [0.5] * 3) <= 1.001
    assert _levels(ours_array, theirs.pixel_values, [0.5] * 3) <= 1.001
    np.testing.assert_array_equal(ours_config, ours_array)


# Four-channel frames: transformers 5.24 keeps the four channels (without do_convert_rgb). Its two
# backends disagree on how they resize them: the default (torchvision) one resizes every channel
# on its own, the PIL one (the reference here; no torchvision needed) resizes uint8 frames as PIL
# RGBA images, which premultiplies RGB by the fourth channel. Ours resizes every channel on its
# own, so it is compared with transformers' PIL backend run on the RGB channels and on the fourth
# channel separately (no premultiplying), with the whole four-channel output where nothing is
# resized (the rest is per-channel arithmetic), and on the fourth channel, which PIL leaves alone.
MEAN4, STD4 = [0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]
FOUR_CHANNEL_INPUTS = {
    "numpy channels first": lambda v: list(np.ascontiguousarray(v.transpose(0, 3, 1, 2))),
    "numpy channels last": lambda v: list(v),
    "numpy video channels first": lambda v: np.ascontiguousarray(v.transpose(0, 3, 1, 2)),
    "torch channels first": lambda v: list(torch.from_numpy(np.ascontiguousarray(v.transpose(0, 3, 1, 2)))),
    "torch channels last": lambda v: list(torch.from_numpy(v)),
    "torch video channels last": lambda v: torch.from_numpy(v),
    "pil rgba": lambda v: [Image.fromarray(f, "RGBA") for f in v],
}


def _rgba_video(frames, height, width, seed=0):
    rng = np.random.default_rng(seed + 1)
    return np.concatenate([_video(frames, height, width, seed), rng.integers(0, 256, (frames, height, width, 1),
                                                                             dtype=np.uint8)], axis=-1)


def _per_channel_reference(Reference, video, image_mean=MEAN4, image_std=STD4, **kwargs):  # noqa: N803 - a class
    """transformers' PIL backend on the RGB channels and on the fourth channel, each resized on its own."""

    def stats(channels: slice) -> dict:
        if not isinstance(image_mean, list):
            return {"image_mean": image_mean, "image_std": image_std}
        return {"image_mean": image_mean[channels], "image_std": image_std[channels]}

    rgb = Reference(**kwargs)(list(video[..., :3]), return_tensors="np", **stats(slice(0, 3))).pixel_values
    fourth = Reference(**kwargs)(list(video[..., 3:]), return_tensors="np", **stats(slice(3, 4))).pixel_values
    return np.concatenate([rgb, fourth], axis=2)


@pytest.mark.parametrize("kind", FOUR_CHANNEL_INPUTS)
@pytest.mark.parametrize("shape, params", [((80, 100), {}), ((97, 131), {"size": 40, "crop_size": 32}),
                                            ((30, 40), {"size": 18, "crop_size": 18})])
def test_four_channel_frames_with_four_value_statistics_are_kept_like_transformers(kind, shape, params, Reference):
    video = _rgba_video(2, *shape)
    frames = FOUR_CHANNEL_INPUTS[kind](video)
    ours = VideoMAEImageProcessor(**params)(frames, image_mean=MEAN4, image_std=STD4, return_tensors="np")
    theirs = Reference(**params)(frames, image_mean=MEAN4, image_std=STD4, return_tensors="np").pixel_values
    assert ours.pixel_values.shape == theirs.shape == (1, 2, 4, params.get("crop_size", 224),
                                                       params.get("crop_size", 224))
    assert _levels(ours.pixel_values, _per_channel_reference(Reference, video, **params), STD4) <= 1.001
    assert _levels(ours.pixel_values[:, :, 3:], theirs[:, :, 3:], STD4[3:]) <= 1.001
    # Nothing resized: the same numbers as transformers' whole four-channel output.
    unresized = {**params, "do_resize": False}
    np.testing.assert_allclose(
        VideoMAEImageProcessor(**unresized)(frames, image_mean=MEAN4, image_std=STD4, return_tensors="np").pixel_values,
        Reference(**unresized)(frames, image_mean=MEAN4, image_std=STD4, return_tensors="np").pixel_values,
        rtol=0, atol=1e-5)


def test_four_channel_frames_with_one_float_statistic_or_unnormalised_are_kept(Reference):
    video = _rgba_video(2, 60, 90)
    params = {"size": 32, "crop_size": 28}
    ours = VideoMAEImageProcessor(**params)(list(video), image_mean=0.3, image_std=0.6, return_tensors="pt")
    expected = _per_channel_reference(Reference, video, image_mean=0.3, image_std=0.6, **params)
    assert ours.pixel_values.shape == (1, 2, 4, 28, 28)
    assert _levels(ours.pixel_values, expected, [0.6] * 4) <= 1.001
    raw = {"do_rescale": False, "do_normalize": False}
    ours = VideoMAEImageProcessor(**params)(list(video), return_tensors="np", data_format="channels_last", **raw)
    expected = _per_channel_reference(Reference, video, **params, **raw)
    assert ours.pixel_values.dtype == np.uint8 and ours.pixel_values.shape == (1, 2, 28, 28, 4)
    assert np.abs(ours.pixel_values.transpose(0, 1, 4, 2, 3).astype(int) - expected.astype(int)).max() <= 1
    frames = VideoMAEImageProcessor(**params)(list(video), image_mean=MEAN4, image_std=STD4).pixel_values
    assert len(frames) == 1 and [f.shape for f in frames[0]] == [(4, 28, 28)] * 2


@pytest.mark.parametrize("kind", ["numpy channels first", "torch channels last", "pil rgba"])
@pytest.mark.parametrize("call", [
    {},  # the default statistics: three values
    {"image_mean": [0.5] * 3, "image_std": [0.5] * 3},
    {"image_mean": MEAN4, "image_std": [0.5] * 3},
    {"image_mean": MEAN4, "image_std": STD4, "do_convert_rgb": True},  # made RGB: four values are one too many
])
def test_statistics_without_one_value_per_channel_are_refused_like_transformers(kind, call, Reference):
    frames = FOUR_CHANNEL_INPUTS[kind](_rgba_video(2, 40, 50))
    with pytest.raises(ValueError, match="must have"):
        Reference()(frames, return_tensors="pt", **call)
    with pytest.raises(ValueError, match="values") as raised:
        VideoMAEImageProcessor()(frames, return_tensors="pt", **call)
    if not call.get("do_convert_rgb"):
        assert "4-channel" in str(raised.value) and "do_convert_rgb=True" in str(raised.value)


def test_uint8_output_without_rescale_and_normalize_like_transformers(Reference):
    frames = list(_video(2, 64, 80))
    kwargs = {"do_rescale": False, "do_normalize": False}
    ours = VideoMAEImageProcessor()(frames, return_tensors="np", **kwargs).pixel_values
    theirs = Reference()(frames, return_tensors="np", **kwargs).pixel_values
    assert ours.dtype == theirs.dtype == np.uint8
    assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1


def test_float_inputs_and_overrides():
    frames = _video(2, 120, 160)
    processor = VideoMAEImageProcessor()
    as_float = processor(frames.astype(np.float32) / 255, do_rescale=False, return_tensors="pt").pixel_values
    as_uint8 = processor(frames, return_tensors="pt").pixel_values
    assert (as_float - as_uint8).abs().max() <= 2 / 255 + 1e-4
    small = processor(frames, size=64, crop_size=(48, 56), return_tensors="pt").pixel_values
    assert small.shape == (1, 2, 3, 48, 56)
    last = processor(frames, data_format="channels_last", return_tensors="pt").pixel_values
    torch.testing.assert_close(last, as_uint8.permute(0, 1, 3, 4, 2))
    assert processor(frames, device="cpu", return_tensors="pt").pixel_values.device.type == "cpu"


def test_batch_feature_behaves_like_transformers():
    out = VideoMAEImageProcessor()(_video(2, 64, 64), return_tensors="pt")
    assert isinstance(out, dict) and isinstance(out, BatchFeature)
    assert out.pixel_values is out["pixel_values"] and list(out) == ["pixel_values"]
    assert out.to(torch.float16).pixel_values.dtype == torch.float16
    assert out.to("cpu").pixel_values.device.type == "cpu"
    with pytest.raises(AttributeError, match="no key 'labels'"):
        _ = out.labels


def test_video_file_in_one_call(tmp_path):
    path = write_video(tmp_path / "clip.mp4", pattern_frames(40, 96, 128))
    processor = VideoMAEImageProcessor()
    out = processor(str(path), num_frames=8, frame_sample_rate=3, return_tensors="pt").pixel_values
    frames = read_video(path, multi_clip_indices(8, 3, 40, 1)[0])
    torch.testing.assert_close(out, processor(frames, return_tensors="pt").pixel_values)
    assert processor([path, path], num_frames=4, return_tensors="pt").pixel_values.shape == (2, 4, 3, 224, 224)


@pytest.mark.parametrize(
    "videos, error, message",
    [
        ([], ValueError, "videos is empty"),
        (np.zeros((2, 3, 4, 5, 6, 7), np.uint8), ValueError, r"shape \(2, 3, 4, 5, 6, 7\)"),
        (np.zeros(10, np.uint8), ValueError, r"shape \(10,\)"),
        ([np.zeros((8, 8, 5), np.uint8)], ValueError, r"channel axis of frames shaped \(8, 8, 5\)"),
        (np.zeros((2, 2, 8, 8), np.uint8), ValueError, r"channel axis of frames shaped \(2, 8, 8\)"),
        ([[]], ValueError, "video 0 has no frames"),
        (np.zeros((0, 8, 8, 3), np.uint8), ValueError, "video 0 has no frames"),
        ([np.zeros((8, 8, 3), np.uint8), "a.mp4"], TypeError, "cannot tell frames from videos"),
        (42, TypeError, "videos must be"),
        (np.full((1, 8, 8, 3), 300, np.int32), ValueError, "0..255"),
    ],
)
def test_bad_input_is_rejected_clearly(videos, error, message):
    with pytest.raises(error, match=message):
        VideoMAEImageProcessor()(videos)


def test_bad_parameters_are_rejected_clearly():
    frames = _video(1, 32, 32)
    with pytest.raises(ValueError, match="return_tensors"):
        VideoMAEImageProcessor()(frames, return_tensors="tf")
    with pytest.raises(ValueError, match="resample 1 is not supported"):
        VideoMAEImageProcessor(resample=1)
    with pytest.raises(ValueError, match="size must be"):
        VideoMAEImageProcessor(size={"longest_edge": 3})
    with pytest.raises(ValueError, match="frames have 2 channels"):
        VideoMAEImageProcessor()(np.zeros((2, 2, 8, 8), np.uint8), input_data_format="channels_first")
    with pytest.raises(ValueError, match="input_data_format"):
        VideoMAEImageProcessor()(frames, input_data_format="first")
    with pytest.raises(ValueError, match="mean has 2 values"):
        VideoMAEImageProcessor(image_mean=[0.5, 0.5])(frames)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_preprocessing_on_gpu_matches_cpu(Reference):
    frames = _video(4, 360, 640)
    expected = Reference()(list(frames), return_tensors="np").pixel_values
    gpu = VideoMAEImageProcessor()(frames, device="cuda", return_tensors="pt").pixel_values
    assert gpu.device.type == "cuda"
    assert _levels(gpu.cpu().numpy(), expected, [0.5] * 3) <= 1.001


def test_guessed_statistics_are_imagenets_for_original_checkpoints_and_said_as_warnings(tmp_path, caplog):
    from videomae.processing import guess_processor

    (tmp_path / "original").mkdir()
    (tmp_path / "original" / "checkpoint.pth").write_bytes(b"")  # a weights file alone, as the original code writes
    (tmp_path / "transformers").mkdir()
    (tmp_path / "transformers" / "config.json").write_text("{}")
    with caplog.at_level(logging.WARNING, logger="videomae"):
        original = guess_processor(tmp_path / "original" / "checkpoint.pth", (112, 160))
        folder = guess_processor(tmp_path / "transformers", (224, 224))
    assert (original.image_mean, original.image_std) == ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    assert original.size == {"shortest_edge": 112} and original.crop_size == {"height": 112, "width": 160}
    assert (folder.image_mean, folder.image_std) == ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("guessing the normalisation" in w for w in warnings)
    assert "ImageNet's, as the original VideoMAE code" in warnings[0] and "transformers' default" in warnings[1]
