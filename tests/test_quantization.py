"""The ecosystem's quantizers work on every linear layer: torch's `quantize_dynamic` (which swaps
modules) and torchao's `quantize_` (which swaps weights for tensor subclasses). The attention's
fused qkv projection with VideoMAE's q / v bias (no k bias) must survive both."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from videomae import VideoMAEConfig, VideoMAEForPreTraining, VideoMAEForVideoClassification

CONFIG = dict(image_size=32, patch_size=8, num_frames=4, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
              intermediate_size=128, decoder_hidden_size=32, decoder_num_hidden_layers=1,
              decoder_num_attention_heads=2, decoder_intermediate_size=64)
# int8 weights (and int8 activations, where dynamic) on this tiny random model: 1.2% to 2.1%
# relative error in the logits, measured; 5% leaves room and still fails a lost v bias (74%).
TOLERANCE = 0.05


def _classifier() -> VideoMAEForVideoClassification:
    torch.manual_seed(0)
    model = VideoMAEForVideoClassification(VideoMAEConfig(**CONFIG, num_labels=5)).eval()
    with torch.no_grad():  # non-zero biases, so that losing or misplacing one shows
        for block in model.videomae.blocks:
            block.attn.q_bias.normal_(0, 0.5)
            block.attn.v_bias.normal_(0, 0.5)
    return model


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def _linears(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]


# torch deprecates its eager quantization for torchao's; users still run it, so it must still work.
QUANTIZE_DYNAMIC_WARNINGS = pytest.mark.filterwarnings("ignore:.*quantiz:DeprecationWarning",
                                                       "ignore:.*quantiz:UserWarning")
PIXELS = torch.randn(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(1))


@QUANTIZE_DYNAMIC_WARNINGS
def test_quantize_dynamic_swaps_every_linear_and_keeps_the_logits_close() -> None:
    model = _classifier()
    with torch.no_grad():
        expected = model(PIXELS).logits
    quantized = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)
    assert _linears(quantized) == []  # all of them swapped, qkv included
    assert isinstance(quantized.videomae.blocks[0].attn.qkv, torch.ao.nn.quantized.dynamic.Linear)
    with torch.no_grad():
        logits = quantized(PIXELS).logits
    assert 0 < _relative(logits, expected) < TOLERANCE


@QUANTIZE_DYNAMIC_WARNINGS
def test_quantize_dynamic_on_a_pretraining_model() -> None:
    torch.manual_seed(0)
    model = VideoMAEForPreTraining(VideoMAEConfig(**CONFIG)).eval()
    mask = torch.zeros(2, 32, dtype=torch.bool)  # 2 x 4 x 4 tubelets, half of them masked
    mask[:, ::2] = True
    with torch.no_grad():
        expected = model(PIXELS, bool_masked_pos=mask).logits
        quantized = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)
        logits = quantized(PIXELS, bool_masked_pos=mask).logits
    assert _linears(quantized) == [] and 0 < _relative(logits, expected) < TOLERANCE


def test_a_swapped_qkv_module_keeps_the_q_and_v_bias_exact() -> None:
    """A module other than a plain Linear (here a subclass with its own forward) is called as a
    module, and the q / v bias is added after it: the same function as the fused default."""

    class Wrapped(nn.Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x)

    model = _classifier()
    with torch.no_grad():
        expected = model(PIXELS).logits
    calls = []
    for block in model.videomae.blocks:
        wrapped = Wrapped(block.attn.qkv.in_features, block.attn.qkv.out_features, bias=False)
        wrapped.weight = block.attn.qkv.weight
        wrapped.register_forward_hook(lambda *_: calls.append(1))
        block.attn.qkv = wrapped
    with torch.no_grad():
        logits = model(PIXELS).logits
    assert len(calls) == len(model.videomae.blocks)
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-6)


def test_torchao_quantize_reaches_every_linear() -> None:
    from torchao import quantization  # the test extra has it: this test is not skipped
    model = _classifier()
    with torch.no_grad():
        expected = model(PIXELS).logits
    names = _linears(model)
    assert "videomae.blocks.0.attn.qkv" in names and "classifier" in names
    for config in (quantization.Int8WeightOnlyConfig(), quantization.Int8DynamicActivationInt8WeightConfig()):
        quantized = copy.deepcopy(model)
        quantization.quantize_(quantized, config)
        modules = dict(quantized.named_modules())
        assert all(type(modules[name].weight) is not nn.Parameter for name in names), config  # subclasses
        with torch.no_grad():
            logits = quantized(PIXELS).logits
        assert 0 < _relative(logits, expected) < TOLERANCE, config
