"""The attention kernel choice (videomae.sdpa): the rule, and that it leaves the CPU path alone.
The GPU side runs in test_gpu.py."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from videomae import sdpa

HOPPER, AMPERE = (9, 0), (8, 0)


def test_cudnn_is_asked_for_only_where_torch_would_pick_another_kernel_on_hopper():
    bf16 = torch.bfloat16
    assert sdpa.plan(HOPPER, bf16, 0.0, "FLASH_ATTENTION", None) == (
        True, "CUDNN_ATTENTION (asked for; torch's choice would be FLASH_ATTENTION)")
    assert sdpa.plan(HOPPER, bf16, 0.0, "CUDNN_ATTENTION", None) == (False, "CUDNN_ATTENTION (torch's choice)")
    assert sdpa.plan(HOPPER, torch.float16, 0.0, "EFFICIENT_ATTENTION", None)[0]


def test_torch_keeps_its_choice_off_hopper_in_float32_with_dropout_or_when_cudnn_fails():
    bf16 = torch.bfloat16
    assert sdpa.plan(AMPERE, bf16, 0.0, "FLASH_ATTENTION", None) == (False, "FLASH_ATTENTION (torch's choice)")
    assert not sdpa.plan(HOPPER, torch.float32, 0.0, "EFFICIENT_ATTENTION", None)[0]
    assert not sdpa.plan(HOPPER, bf16, 0.1, "FLASH_ATTENTION", None)[0]
    assert not sdpa.plan(HOPPER, bf16, 0.0, "unknown", None)[0]
    ask, note = sdpa.plan(HOPPER, bf16, 0.0, "FLASH_ATTENTION", "cannot run this shape (no kernel)")
    assert not ask and note == "FLASH_ATTENTION (torch's choice; cuDNN: cannot run this shape (no kernel))"


def test_cpu_attention_is_torch_own_and_records_nothing():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 10, 8, generator=g) for _ in range(3))
    before = sdpa.chosen()
    torch.testing.assert_close(sdpa.scaled_dot_product_attention(q, k, v), F.scaled_dot_product_attention(q, k, v),
                               rtol=0, atol=0)
    assert sdpa.chosen() == before


def test_torch_reports_its_own_choice_by_name():
    """The probe the rule depends on (`torch._fused_sdp_choice`) answers on this torch."""
    q = torch.randn(1, 2, 8, 16)
    assert sdpa._default_backend(q, q, q, 0.0) in {"MATH", "FLASH_ATTENTION", "EFFICIENT_ATTENTION",
                                                   "CUDNN_ATTENTION", "OVERRIDEABLE"}
