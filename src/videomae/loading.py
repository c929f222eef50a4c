"""Loading a model for inference by what it is: a classifier, a feature model, a pretraining model
with its decoder, or an exported file; its processor (or a guess, with a warning); the frame
stride it was trained with; class names."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from torch import nn

from .config import CONFIG_NAME, VideoMAEConfig
from .hub import resolve_file
from .processing import VideoMAEImageProcessor, guess_processor

SAMPLING_RATE_KEY = "sampling_rate"  # in config.json: the frame stride the model was trained with

__all__ = ["quiet_loading", "read_config", "model_architectures", "load_processor", "load_classifier",
           "load_feature_model", "load_pretraining_model", "checkpoint_sampling_rate", "read_label_names",
           "SAMPLING_RATE_KEY"]


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence the loader's missing / unused weight messages where the caller checks the
    loading info itself and says what is wrong in its own words."""
    loader = logging.getLogger("videomae.pretrained")
    previous = loader.level
    loader.setLevel(logging.ERROR)
    try:
        yield
    finally:
        loader.setLevel(previous)


def read_config(model: str, offline: bool = False) -> VideoMAEConfig | None:
    """A model's config.json without its weights (beside a checkpoint file, in a folder or on the
    hub), or None where there is none."""
    if Path(model).is_file():
        sibling = Path(model).parent / CONFIG_NAME
        return VideoMAEConfig.from_json_file(sibling) if sibling.is_file() else None
    path = resolve_file(model, CONFIG_NAME, required=False, local_files_only=offline)
    return VideoMAEConfig.from_json_file(path) if path is not None else None


def model_architectures(model: str, offline: bool = False) -> list[str]:
    """The `architectures` recorded in a model's config.json ([] for a .pth or none recorded)."""
    config = read_config(model, offline)
    return list(config.architectures or []) if config is not None else []


def load_processor(model: str, config: VideoMAEConfig, offline: bool = False) -> VideoMAEImageProcessor:
    """The model's preprocessor_config.json, or a guess at the model's size, with a warning
    (ImageNet's statistics for an original checkpoint, transformers' 0.5 otherwise). An exported
    file (.onnx, .pt2) carries its own."""
    from .exported import is_exported, read_metadata

    if is_exported(model):
        import json

        from .exported import PROCESSOR_KEY

        return VideoMAEImageProcessor.from_dict(json.loads(read_metadata(model)[PROCESSOR_KEY]))
    folder = Path(model).parent if Path(model).is_file() else model
    try:
        return VideoMAEImageProcessor.from_pretrained(folder, local_files_only=offline)
    except (OSError, ValueError) as err:
        return guess_processor(model, config.image_hw, str(err))


def load_classifier(model: str, offline: bool = False) -> nn.Module:
    """A `VideoMAEForVideoClassification` with a trained head; an error naming the checkpoint
    when it has none (pretraining or bare encoder) or is a regression model. An exported file
    (.onnx, .pt2: see `videomae.exported`) loads as an `ExportedModel`, which the pipeline runs alike."""
    from .exported import is_exported, load_exported
    from .modeling import VideoMAEForVideoClassification

    if is_exported(model):
        exported = load_exported(model)
        if exported.output != "logits":
            raise ValueError(f"{model}: an exported encoder (output {exported.output}), not a classifier")
        return exported  # type: ignore[return-value]

    with quiet_loading():
        net, info = VideoMAEForVideoClassification.from_pretrained(model, local_files_only=offline,
                                                                   output_loading_info=True)
    if any(k.startswith("classifier.") for k in info["missing_keys"]):
        raise ValueError(f"{model}: has no classification head (a pretraining or bare encoder checkpoint); "
                         f"fine-tune it first, or use `videomae embed` for features")
    if net.config.problem_type == "regression":
        raise ValueError(f"{model}: a regression model, not a classifier")
    return net


def load_feature_model(model: str, offline: bool = False) -> tuple[nn.Module, str]:
    """(model, what its features are): a classifier (features = fc_norm(mean of tokens)) when
    the checkpoint is one, else the encoder (features = mean of the last hidden states)."""
    from .modeling import VideoMAEForVideoClassification, VideoMAEModel

    if "VideoMAEForVideoClassification" in model_architectures(model, offline):
        return VideoMAEForVideoClassification.from_pretrained(model, local_files_only=offline), "pooled (fc_norm)"
    with quiet_loading():
        net, info = VideoMAEModel.from_pretrained(model, local_files_only=offline, output_loading_info=True)
    if any(k.startswith("classifier.") for k in info["unexpected_keys"]):
        return VideoMAEForVideoClassification.from_pretrained(model, local_files_only=offline), "pooled (fc_norm)"
    return net, "mean of encoder tokens"


def load_pretraining_model(model: str, offline: bool = False) -> nn.Module:
    """A `VideoMAEForPreTraining` whose decoder comes from the checkpoint (to reconstruct)."""
    from .modeling import VideoMAEForPreTraining

    with quiet_loading():
        net, info = VideoMAEForPreTraining.from_pretrained(model, local_files_only=offline, output_loading_info=True)
    if any(k.startswith(("decoder.", "encoder_to_decoder", "mask_token")) for k in info["missing_keys"]):
        raise ValueError(f"{model}: has no pretraining decoder, so it cannot reconstruct; give a "
                         f"pretraining checkpoint (VideoMAEForPreTraining)")
    return net


def checkpoint_sampling_rate(config: VideoMAEConfig) -> int | None:
    """The frame stride a model was trained with, as training records it in config.json
    (`"sampling_rate": 4`), or None for checkpoints that do not say (the hub's, .pth files)."""
    value = config.extra.get(SAMPLING_RATE_KEY)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 1 else None


def read_label_names(path: str | os.PathLike, num_labels: int) -> dict[int, str]:
    """id2label from a file of class names, one a line (line i = label i), checked against the
    model's number of outputs."""
    from .data.datasets import read_class_names

    names = read_class_names(path)
    if len(names) != num_labels:
        raise ValueError(f"{path}: {len(names)} class names, but the model has {num_labels} outputs")
    return dict(enumerate(names))
