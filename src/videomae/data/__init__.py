"""Video data for training: datasets, a resumable distributed sampler, collation with masks
and failure reporting, and Mixup / CutMix."""

from .collate import MaskGenerator, TrainCollate, eval_collate
from .datasets import (
    VIDEO_EXTENSIONS,
    DecodeFailure,
    MultiViewDataset,
    VideoClipDataset,
    VideoRecord,
    class_folder_records,
    find_videos,
    load_records,
    read_class_names,
    read_video_list,
)
from .mixup import Mixup, soft_cross_entropy, soft_targets
from .sampler import ResumableSampler, epoch_permutation, sample_seed

__all__ = [
    "VIDEO_EXTENSIONS", "DecodeFailure", "MultiViewDataset", "VideoClipDataset", "VideoRecord",
    "class_folder_records", "find_videos", "load_records", "read_class_names", "read_video_list",
    "MaskGenerator", "TrainCollate", "eval_collate", "Mixup", "soft_cross_entropy", "soft_targets",
    "ResumableSampler", "epoch_permutation", "sample_seed",
]
