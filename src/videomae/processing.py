"""VideoMAEImageProcessor: transformers' video preprocessing, batched on tensors.

Same parameters, defaults, preprocessor_config.json and outputs as transformers'
`VideoMAEImageProcessor` (resize the shorter side to 224 with bilinear filtering, centre-crop
224 x 224, rescale by 1/255, normalise with mean = std = 0.5), so checkpoints' configs load
unchanged and pixel values agree with its PIL backend within one 8-bit level.

The work is done differently: all frames of all videos of one size are stacked into one uint8
tensor (a view when they already share memory), resized once with torch's antialiased uint8
kernel in the memory layout they come in, cropped as a view, and converted to float32, scaled and
shifted in the output's final layout (see `videomae.transforms`). It runs on the CPU or, with
`device=`, on a GPU. Given a file path it also decodes and samples the clip (see `videomae.video`).

Channels follow transformers 5.x: four-channel frames (RGBA, or RGB plus depth, ...) are kept as
four channels, each resized on its own as transformers' default (torchvision) backend does, and
normalised with a four-value mean and std; a three-value mean is then refused, as transformers
refuses it. `do_convert_rgb=True` composites the fourth channel onto white as alpha instead. Gray
frames are always repeated to RGB (transformers keeps one channel unless `do_convert_rgb`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import torch
from PIL import Image as PILImage

from . import transforms as T
from .config import CONFIG_NAME as MODEL_CONFIG_NAME, read_json_object
from .constants import IMAGENET_STANDARD_MEAN, IMAGENET_STANDARD_STD
from .inputs import as_clips, concat_clips
from .masking import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from .sampling import multi_clip_indices
from .video import read_video

__all__ = ["BatchFeature", "VideoMAEImageProcessor", "VideoMAEFeatureExtractor", "guess_processor"]

logger = logging.getLogger(__name__)

CONFIG_NAME = "preprocessor_config.json"
# PIL.Image.Resampling values, as stored in preprocessor_config.json, and the filters that match them.
_RESAMPLE = {0: "nearest", 2: "bilinear", 3: "bicubic"}
_SIZE_KEYS = ({"shortest_edge"}, {"shortest_edge", "longest_edge"}, {"height", "width"}, {"max_height", "max_width"})
# Keys transformers writes or reads that carry no preprocessing parameter.
_METADATA_KEYS = {"image_processor_type", "feature_extractor_type", "processor_class", "auto_map", "_processor_class"}


def _as_tuple(value: float | Sequence[float]) -> float | tuple[float, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else value


class BatchFeature(dict):
    """The processor's output: a dict (`pixel_values`) with attribute access and `.to()`.

    Behaves like transformers' BatchFeature: `batch.pixel_values`, `batch["pixel_values"]`,
    `model(**batch)`, `batch.to("cuda")`, `batch.to(torch.float16)`.
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"BatchFeature has no key {name!r} (keys: {list(self)})") from None

    def to(self, *args: Any, **kwargs: Any) -> BatchFeature:
        """Move tensors (and cast floating ones, if a dtype is given) as `torch.Tensor.to` does, in place."""
        device = kwargs.get("device")
        if device is None and args and not isinstance(args[0], torch.dtype):
            device = args[0]

        def move(value: Any) -> Any:
            if isinstance(value, torch.Tensor):
                if value.is_floating_point():
                    return value.to(*args, **kwargs)
                return value.to(device=device) if device is not None else value
            if isinstance(value, (list, tuple)):
                return type(value)(move(item) for item in value)
            return value

        for key in list(self):
            self[key] = move(self[key])
        return self


def _size_dict(size: int | Sequence[int] | dict | None, default_to_square: bool, name: str) -> dict | None:
    """transformers' size conventions: an int is a square (crop) or a shorter side (resize)."""
    if size is None:
        return None
    if isinstance(size, bool):
        raise ValueError(f"{name} must be an int, (height, width) or a dict, got {size!r}")
    if isinstance(size, int):
        return {"height": size, "width": size} if default_to_square else {"shortest_edge": size}
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return {"height": int(size[0]), "width": int(size[1])}
    if isinstance(size, dict):
        size = {key: int(value) for key, value in size.items() if value is not None}
        if set(size) in _SIZE_KEYS:
            return size
    raise ValueError(
        f"{name} must be an int, (height, width) or a dict with keys {[sorted(k) for k in _SIZE_KEYS]}, "
        f"got {size!r}"
    )


def _mean_std(value: float | Sequence[float] | None) -> float | list[float] | None:
    """A float (one value for every channel, kept as given, as transformers does) or a list."""
    if value is None or isinstance(value, (int, float)):
        return None if value is None else float(value)
    return [float(v) for v in value]


def _resample(value: int | str | None) -> int | None:
    """A PIL resampling filter number (PIL.Image.Resampling members are ints)."""
    if value is None:
        return None
    if isinstance(value, str):
        by_name = {v: k for k, v in _RESAMPLE.items()}
        if value.lower() in by_name:
            return by_name[value.lower()]
    elif int(value) in _RESAMPLE:
        return int(value)
    raise ValueError(f"resample {value!r} is not supported: use one of {_RESAMPLE} (PIL.Image.Resampling values)")


def _channels_format(value: Any, name: str) -> str | None:
    if value is None:
        return None
    text = getattr(value, "value", value)
    if text not in ("channels_first", "channels_last"):
        raise ValueError(f'{name} must be "channels_first" or "channels_last", got {value!r}')
    return text


# ---------------------------------------------------------------- processor


class VideoMAEImageProcessorKwargs(TypedDict, total=False):
    """The keyword arguments the processor takes (what transformers' `valid_kwargs` lists)."""

    do_resize: bool
    size: dict
    resample: int
    do_center_crop: bool
    crop_size: dict
    do_rescale: bool
    rescale_factor: float
    do_normalize: bool
    image_mean: float | Sequence[float]
    image_std: float | Sequence[float]
    do_convert_rgb: bool | None


class VideoMAEImageProcessor:
    """Preprocess videos for VideoMAE: resize, centre-crop, rescale, normalise.

    Args (defaults are transformers'):
        do_resize: resize so that `size` holds.
        size: {"shortest_edge": 224} (aspect kept; also with "longest_edge"), {"height", "width"}
            (exact), or {"max_height", "max_width"}; an int means a shorter side.
        resample: PIL filter number: 2 bilinear (default), 3 bicubic, 0 nearest.
        do_center_crop: crop the centre `crop_size` ({"height": 224, "width": 224}; an int is a
            square); an image smaller than the crop is zero-padded, as transformers does.
        do_rescale, rescale_factor: multiply by 1/255.
        do_normalize, image_mean, image_std: (x - mean) / std per channel, 0.5 by default. A list
            needs one value per channel: four for four-channel frames, unless `do_convert_rgb`.
        do_convert_rgb: composite the fourth channel of four-channel frames onto white (as alpha),
            giving RGB. None / False (transformers' default): four channels are kept. Gray frames
            are repeated to RGB either way.
    """

    model_input_names = ["pixel_values"]
    valid_kwargs = VideoMAEImageProcessorKwargs  # the parameters, as transformers lists them

    def __init__(
        self,
        do_resize: bool = True,
        size: int | Sequence[int] | dict | None = None,
        resample: int | str = 2,
        do_center_crop: bool = True,
        crop_size: int | Sequence[int] | dict | None = None,
        do_rescale: bool = True,
        rescale_factor: float = 1 / 255,
        do_normalize: bool = True,
        image_mean: float | Sequence[float] | None = None,
        image_std: float | Sequence[float] | None = None,
        do_convert_rgb: bool | None = None,
    ) -> None:
        self.do_resize = do_resize
        self.size = _size_dict(size if size is not None else {"shortest_edge": 224}, False, "size")
        self.resample = _resample(resample)
        self.do_center_crop = do_center_crop
        self.crop_size = _size_dict(
            crop_size if crop_size is not None else {"height": 224, "width": 224}, True, "crop_size"
        )
        self.do_rescale = do_rescale
        self.rescale_factor = float(rescale_factor)
        self.do_normalize = do_normalize
        self.image_mean = _mean_std(image_mean if image_mean is not None else IMAGENET_STANDARD_MEAN)
        self.image_std = _mean_std(image_std if image_std is not None else IMAGENET_STANDARD_STD)
        self.do_convert_rgb = do_convert_rgb

    # ------------------------------------------------------------ configuration

    def to_dict(self) -> dict[str, Any]:
        """The parameters, with the keys and values transformers writes to preprocessor_config.json."""
        config = {
            "crop_size": dict(self.crop_size),
            "do_center_crop": self.do_center_crop,
            "do_normalize": self.do_normalize,
            "do_rescale": self.do_rescale,
            "do_resize": self.do_resize,
            "image_mean": _as_tuple(self.image_mean),
            "image_processor_type": "VideoMAEImageProcessor",
            "image_std": _as_tuple(self.image_std),
            "resample": PILImage.Resampling(self.resample),  # an int to json, as in transformers
            "rescale_factor": self.rescale_factor,
            "size": dict(self.size),
        }
        if self.do_convert_rgb is not None:
            config["do_convert_rgb"] = self.do_convert_rgb
        return config

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, json_file_path: str | os.PathLike) -> None:
        Path(json_file_path).write_text(self.to_json_string())

    @classmethod
    def from_json_file(cls, json_file: str | os.PathLike) -> VideoMAEImageProcessor:
        return cls.from_dict(read_json_object(json_file))

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string()}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VideoMAEImageProcessor) and self.to_dict() == other.to_dict()

    @classmethod
    def from_dict(cls, config: dict[str, Any], **overrides: Any) -> VideoMAEImageProcessor:
        """Build from a preprocessor_config.json dictionary; `overrides` replace its values.

        Keys other processors or versions add and VideoMAE does not use are ignored with a
        warning; an unknown name in `overrides` is an error (most likely a typo).
        """
        params = set(cls.__init__.__code__.co_varnames[1 : cls.__init__.__code__.co_argcount])
        unknown = sorted(set(overrides) - params)
        if unknown:
            raise TypeError(f"unknown VideoMAEImageProcessor parameters {unknown}; valid: {sorted(params)}")
        config = {**config, **overrides}
        ignored = sorted(set(config) - params - _METADATA_KEYS)
        if ignored:
            logger.warning("preprocessor config keys not used by VideoMAEImageProcessor: %s", ignored)
        return cls(**{key: value for key, value in config.items() if key in params})

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
        token: str | bool | None = None,
        subfolder: str = "",
        **overrides: Any,
    ) -> VideoMAEImageProcessor:
        """Load preprocessor_config.json from a folder, a file, or a Hugging Face Hub repository id."""
        path = _resolve_config(pretrained_model_name_or_path, revision, cache_dir, local_files_only, token, subfolder)
        try:
            config = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise OSError(f"{path}: not a readable preprocessor config ({err})") from err
        if "image_processor" in config and Path(path).name == "processor_config.json":
            config = config["image_processor"]
        if not isinstance(config, dict):
            raise OSError(f"{path}: expected a JSON object, got {type(config).__name__}")
        return cls.from_dict(config, **overrides)

    def save_pretrained(self, save_directory: str | os.PathLike) -> list[str]:
        """Write preprocessor_config.json into `save_directory` (created if needed)."""
        directory = Path(save_directory)
        if directory.is_file():
            raise OSError(f"{directory}: is a file; save_pretrained needs a directory")
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / CONFIG_NAME
        temporary = target.with_suffix(".json.tmp")
        temporary.write_text(self.to_json_string(), encoding="utf-8")
        os.replace(temporary, target)
        return [str(target)]

    # ------------------------------------------------------------ preprocessing

    def preprocess(
        self,
        videos: Any,
        *,
        do_resize: bool | None = None,
        size: int | Sequence[int] | dict | None = None,
        resample: int | str | None = None,
        do_center_crop: bool | None = None,
        crop_size: int | Sequence[int] | dict | None = None,
        do_rescale: bool | None = None,
        rescale_factor: float | None = None,
        do_normalize: bool | None = None,
        image_mean: float | Sequence[float] | None = None,
        image_std: float | Sequence[float] | None = None,
        do_convert_rgb: bool | None = None,
        return_tensors: str | None = None,
        data_format: str = "channels_first",
        input_data_format: str | None = None,
        device: str | torch.device | None = None,
        num_frames: int = 16,
        frame_sample_rate: int = 4,
    ) -> BatchFeature:
        """Turn one video or a batch of videos into `pixel_values`.

        Args:
            videos: a video, or a list of videos. A video is a list of frames (PIL images, numpy
                arrays or tensors, channels first or last), a 4-d array / tensor (frames, H, W, C)
                or (frames, C, H, W), or a path to a video file. A 5-d array / tensor is a batch.
            do_resize ... image_std: override the processor's parameters for this call.
            do_convert_rgb: composite four-channel frames onto white (RGB); else they stay four.
            return_tensors: "pt" (a torch tensor), "np" (a numpy array), or None (a list of lists
                of numpy arrays, one per frame, as transformers returns).
            data_format: "channels_first" -> (batch, frames, C, H, W); "channels_last" ->
                (batch, frames, H, W, C). C is 3, or 4 for four-channel frames kept as they are.
            input_data_format: channel position of array / tensor frames; inferred when None
                (channels first if the first axis has 1, 3 or 4 entries, as transformers infers).
            device: preprocess there (e.g. "cuda"); "pt" results stay on it.
            num_frames, frame_sample_rate: the clip taken from a video file (the centred clip of
                `num_frames` frames, `frame_sample_rate` apart; short videos repeat frames).

        Returns:
            BatchFeature with "pixel_values".
        """
        do_convert_rgb = self.do_convert_rgb if do_convert_rgb is None else do_convert_rgb
        do_resize = self.do_resize if do_resize is None else do_resize
        size = self.size if size is None else _size_dict(size, False, "size")
        resample = self.resample if resample is None else _resample(resample)
        do_center_crop = self.do_center_crop if do_center_crop is None else do_center_crop
        crop_size = self.crop_size if crop_size is None else _size_dict(crop_size, True, "crop_size")
        do_rescale = self.do_rescale if do_rescale is None else do_rescale
        rescale_factor = self.rescale_factor if rescale_factor is None else float(rescale_factor)
        do_normalize = self.do_normalize if do_normalize is None else do_normalize
        image_mean = self.image_mean if image_mean is None else _mean_std(image_mean)
        image_std = self.image_std if image_std is None else _mean_std(image_std)
        out_format = _channels_format(data_format, "data_format") or "channels_first"
        in_format = _channels_format(input_data_format, "input_data_format")
        if return_tensors is not None and getattr(return_tensors, "value", return_tensors) not in ("pt", "np"):
            raise ValueError(f'return_tensors must be "pt", "np" or None, got {return_tensors!r}')
        if do_center_crop and {"height", "width"} - set(crop_size):
            raise ValueError(f"crop_size must have keys 'height' and 'width', got {crop_size}")

        def read_centred_clip(path: str | os.PathLike) -> torch.Tensor:
            return read_video(path, lambda total: multi_clip_indices(num_frames, frame_sample_rate, total, 1)[0])

        pieces = as_clips(videos, in_format, read_centred_clip, float_white=255.0 if do_rescale else 1.0,
                          convert_rgb=bool(do_convert_rgb))
        if do_normalize:
            _check_channels(pieces, image_mean, image_std)
        if device is not None:
            pieces = [(video, clip.to(device)) for video, clip in pieces]

        outputs: list[torch.Tensor | None] = [None] * len(pieces)
        groups: dict[tuple, list[int]] = {}
        for i, (_, clip) in enumerate(pieces):
            groups.setdefault((tuple(clip.shape[1:]), clip.dtype, clip.device), []).append(i)
        channels_last = out_format == "channels_last"
        for members in groups.values():
            batch = concat_clips([pieces[i][1] for i in members])  # (sum of frames, C, H, W)
            if do_resize:
                batch = T.resize(batch, _resize_target(batch.shape[-2:], size), _RESAMPLE[resample])
            if do_center_crop:
                batch = T.center_crop(batch, (crop_size["height"], crop_size["width"]))
            # Written straight into the final layout: no copy afterwards, for either data_format.
            rescaled = do_rescale or do_normalize
            out = _empty_frames(batch.shape, torch.float32 if rescaled else batch.dtype, batch.device, channels_last)
            if rescaled:
                T.rescale_and_normalize(
                    batch,
                    rescale_factor if do_rescale else None,
                    image_mean if do_normalize else None,
                    image_std if do_normalize else None,
                    out=out,
                )
            else:
                out.copy_(batch)  # never hand back the input
            offsets = np.cumsum([0] + [pieces[i][1].shape[0] for i in members])
            for k, i in enumerate(members):
                outputs[i] = out[offsets[k] : offsets[k + 1]]

        num_videos = pieces[-1][0] + 1
        per_video: list[list[torch.Tensor]] = [[] for _ in range(num_videos)]
        for (video, _), out in zip(pieces, outputs, strict=True):
            per_video[video].append(out)
        clips = [parts[0] if len(parts) == 1 else torch.cat(parts) for parts in per_video]
        if channels_last:
            clips = [clip.permute(0, 2, 3, 1).contiguous() for clip in clips]  # a view when already written so
        return BatchFeature(pixel_values=_format(clips, return_tensors))

    __call__ = preprocess


VideoMAEFeatureExtractor = VideoMAEImageProcessor  # the transformers 4.x name


# ---------------------------------------------------------------- helpers


def _check_channels(pieces: list[tuple[int, torch.Tensor]], mean: float | list[float],
                    std: float | list[float]) -> None:
    """A list mean / std has one value per channel; refused otherwise, as transformers refuses it."""
    for name, value in (("image_mean", mean), ("image_std", std)):
        if not isinstance(value, list):
            continue  # one float serves every channel
        for video, clip in pieces:
            channels = clip.shape[1]
            if len(value) != channels:
                hint = (": give four values to keep the fourth channel, or do_convert_rgb=True to composite "
                        "it onto white as alpha (RGB)") if channels == 4 else ""
                raise ValueError(f"video {video} has {channels}-channel frames, but {name} has {len(value)} "
                                 f"values {value}{hint}")


def _empty_frames(shape: Sequence[int], dtype: torch.dtype, device: torch.device, channels_last: bool) -> torch.Tensor:
    """Uninitialised (frames, C, H, W), with channels-last memory if asked for."""
    frames, channels, height, width = shape
    if channels_last:
        return torch.empty((frames, height, width, channels), dtype=dtype, device=device).permute(0, 3, 1, 2)
    return torch.empty((frames, channels, height, width), dtype=dtype, device=device)


def _resize_target(shape: Sequence[int], size: dict) -> tuple[int, int]:
    height, width = int(shape[0]), int(shape[1])
    if "shortest_edge" in size:
        return T.shortest_edge_size(height, width, size["shortest_edge"], size.get("longest_edge"))
    if "height" in size:
        return size["height"], size["width"]
    scale = min(size["max_height"] / height, size["max_width"] / width)
    return int(height * scale), int(width * scale)


def _format(clips: list[torch.Tensor], return_tensors: str | None) -> Any:
    kind = getattr(return_tensors, "value", return_tensors)
    if kind is None:
        return [[frame.numpy() for frame in clip.cpu()] for clip in clips]
    shapes = {tuple(clip.shape) for clip in clips}
    if len(shapes) > 1:
        raise ValueError(
            f"videos of different shapes {sorted(shapes)} cannot be stacked into one {kind!r} array: give "
            "videos the same number of frames, and use do_center_crop or a size with height and width"
        )
    if len(clips) == 1:
        stacked = clips[0].unsqueeze(0)
    else:
        stacked = torch.stack(clips)
    return stacked.cpu().numpy() if kind == "np" else stacked


def guess_processor(model: str | os.PathLike, image_hw: tuple[int, int], reason: str = "") -> VideoMAEImageProcessor:
    """A processor for a model that has no preprocessor_config.json, at the model's size.

    The statistics are a guess, so it is said as a warning. A weights file with no config.json
    beside it is an original research checkpoint (or one of ours): that code normalises with
    ImageNet's mean and std, so those. Anything else (a transformers folder) gets the
    transformers processor's default, mean = std = 0.5.
    """
    path = Path(model)
    original = path.is_file() and not (path.parent / MODEL_CONFIG_NAME).is_file()
    mean, std = (IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD) if original else \
        (IMAGENET_STANDARD_MEAN, IMAGENET_STANDARD_STD)
    whose = "ImageNet's, as the original VideoMAE code" if original else "0.5, transformers' default"
    height, width = image_hw
    logger.warning("%s: no usable %s%s; guessing the normalisation: mean %s, std %s (%s). If the model was trained "
                   "with other statistics, write them in a %s beside it", model, CONFIG_NAME,
                   f" ({reason})" if reason else "", list(mean), list(std), whose, CONFIG_NAME)
    return VideoMAEImageProcessor(size={"shortest_edge": min(height, width)}, crop_size={"height": height,
                                  "width": width}, image_mean=list(mean), image_std=list(std))


def _resolve_config(
    name: str | os.PathLike,
    revision: str | None,
    cache_dir: str | os.PathLike | None,
    local_files_only: bool,
    token: str | bool | None,
    subfolder: str,
) -> str:
    """Local path of the preprocessor config for a file, a folder or a hub repository id."""
    path = Path(name) / subfolder if subfolder else Path(name)
    if path.is_file():
        return str(path)
    if path.is_dir():
        for candidate in (CONFIG_NAME, "processor_config.json"):
            if (path / candidate).is_file():
                return str(path / candidate)
        raise OSError(f"{path}: no {CONFIG_NAME} in this folder")
    from .hub import resolve_file  # huggingface_hub only when a hub id is asked for

    # Not on disk: a hub repository id (resolve_file says clearly when it is neither).
    filename = f"{subfolder}/{CONFIG_NAME}" if subfolder else CONFIG_NAME
    found = resolve_file(name, filename, revision=revision, cache_dir=cache_dir, token=token,
                         local_files_only=local_files_only)
    return str(found)
