"""videomae: VideoMAE inference, pretraining and fine-tuning, compatible with transformers."""

from .config import PRESETS, VideoMAEConfig
from .masking import (
    Reconstruction,
    normalize_patches,
    patchify,
    pretraining_targets,
    random_mask,
    reconstruct,
    running_cell_mask,
    tube_mask,
    unnormalize,
    unpatchify,
)
from .modeling import VideoMAEForPreTraining, VideoMAEForVideoClassification, VideoMAEModel
from .outputs import BaseModelOutput, ImageClassifierOutput, VideoMAEForPreTrainingOutput
from .processing import BatchFeature, VideoMAEFeatureExtractor, VideoMAEImageProcessor
from .sampling import multi_clip_indices, sample_frame_indices, segment_view_indices, uniform_indices
from .video import VideoDecodeError, VideoInfo, probe_video, read_video

__version__ = "0.1.0"

__all__ = [
    "PRESETS", "VideoMAEConfig",
    "VideoMAEModel", "VideoMAEForPreTraining", "VideoMAEForVideoClassification",
    "BaseModelOutput", "ImageClassifierOutput", "VideoMAEForPreTrainingOutput",
    "VideoMAEImageProcessor", "VideoMAEFeatureExtractor", "BatchFeature",
    "read_video", "probe_video", "VideoInfo", "VideoDecodeError",
    "sample_frame_indices", "uniform_indices", "segment_view_indices", "multi_clip_indices",
    "tube_mask", "random_mask", "running_cell_mask", "patchify", "unpatchify", "pretraining_targets",
    "normalize_patches",
    "unnormalize", "reconstruct", "Reconstruction",
]
