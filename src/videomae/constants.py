"""Normalisation statistics, in one place.

Two sets are in use, and which one a model needs depends on how it was trained:
- ImageNet's (`IMAGENET_DEFAULT_*`): the original VideoMAE code normalises with these, so do
  its checkpoints, our training recipe and the un-normalising of reconstruction targets.
- 0.5 / 0.5 (`IMAGENET_STANDARD_*`): transformers' VideoMAEImageProcessor default, used when a
  preprocessor_config.json says nothing.
"""

from __future__ import annotations

IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)
IMAGENET_STANDARD_MEAN = (0.5, 0.5, 0.5)
IMAGENET_STANDARD_STD = (0.5, 0.5, 0.5)

__all__ = ["IMAGENET_DEFAULT_MEAN", "IMAGENET_DEFAULT_STD", "IMAGENET_STANDARD_MEAN", "IMAGENET_STANDARD_STD"]
