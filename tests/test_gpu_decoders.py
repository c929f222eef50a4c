"""The GPU decoder's own steps, checked on the CPU: which frames to decode, the resize, and the
errors for a decoder that cannot run here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from videomae.data.gpu_decoders import gpu_decoder
from videomae.data.nvdec import frames_to_decode, resize_short_side
from videomae.video import VideoDecodeError, stored_size


def test_frames_to_decode_sorts_dedupes_and_maps_back():
    unique, inverse = frames_to_decode("a.mp4", lambda n: [n - 1, 2, 2, 0], 10)
    assert unique.tolist() == [0, 2, 9] and unique[inverse].tolist() == [9, 2, 2, 0]
    with pytest.raises(VideoDecodeError, match=r"a\.mp4: frame index 10 out of range.*10 frames"):
        frames_to_decode("a.mp4", [3, 10], 10)
    with pytest.raises(VideoDecodeError, match=r"a\.mp4: no frame indices"):
        frames_to_decode("a.mp4", [], 10)


def test_resize_short_side_sizes_frames_as_read_video_does():
    planes = torch.zeros(2, 3, 360, 640, dtype=torch.uint8)
    width, height = stored_size(224, 640, 360)
    assert resize_short_side(planes, 224).shape == (2, 3, height, width)
    assert resize_short_side(planes, None) is planes


@pytest.mark.parametrize("name", ["nvdec"])
def test_a_gpu_decoder_on_the_cpu_is_refused_by_name(name):
    with pytest.raises(ValueError, match=f"'{name}' decodes on a CUDA GPU; this run is on cpu"):
        gpu_decoder(name, "cpu")
    with pytest.raises(ValueError, match="decoder must be one of"):
        gpu_decoder("vaapi", "cpu")
    with pytest.raises(ValueError, match="decoder must be one of"):
        gpu_decoder("dali", "cpu")  # measured and left out: a clear refusal, not an import error
    assert np.asarray(stored_size(224, 640, 360)).min() == 224
