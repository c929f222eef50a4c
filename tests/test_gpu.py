"""GPU checks (skipped without CUDA): CUDA equals CPU and transformers within bf16 tolerance,
compiled equals eager."""

from __future__ import annotations

import pytest
import torch

import videomae
from reference import rel_err, tiny

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

BF16_TOL = 2e-2
CFG = tiny(image_size=64, patch_size=16, num_frames=8, hidden_size=128, num_attention_heads=4,
           intermediate_size=256, decoder_hidden_size=64, decoder_num_attention_heads=2, decoder_intermediate_size=128)


def _perturb(model: torch.nn.Module) -> torch.nn.Module:
    """The model's own initialisation plus small noise, so zero biases are not zero (random
    weights of large scale make activations explode and bf16 comparisons meaningless)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.02)
    return model


def _inputs(batch: int = 4):
    config = videomae.VideoMAEConfig(**CFG)
    g = torch.Generator().manual_seed(0)
    pixels = torch.randn(batch, config.num_frames, 3, *config.image_hw, generator=g)
    return config, pixels, videomae.tube_mask(config.grid_size, 0.75, batch, generator=g)


@pytest.mark.parametrize("name", ["VideoMAEModel", "VideoMAEForPreTraining", "VideoMAEForVideoClassification"])
def test_cuda_matches_cpu_and_transformers(tmp_path, name):
    transformers = pytest.importorskip("transformers")
    config, pixels, mask = _inputs()
    ours = _perturb(getattr(videomae, name)(config)).eval()
    ours.save_pretrained(tmp_path)
    theirs = getattr(transformers, name).from_pretrained(tmp_path, attn_implementation="sdpa").cuda().eval()
    kwargs = {"bool_masked_pos": mask} if name == "VideoMAEForPreTraining" else {}
    with torch.no_grad():
        cpu = ours(pixels, **kwargs)
        gpu_model = ours.cuda()
        with torch.autocast("cuda", torch.bfloat16):
            gpu = gpu_model(pixels.cuda(), **{k: v.cuda() for k, v in kwargs.items()})
            ref = theirs(pixel_values=pixels.cuda(), **{k: v.cuda() for k, v in kwargs.items()})
    key = "last_hidden_state" if name == "VideoMAEModel" else "logits"
    ours_err = rel_err(gpu[key].cpu(), cpu[key])  # bf16 on the GPU against float32 on the CPU
    ref_err = rel_err(ref[key].cpu(), cpu[key])  # transformers' bf16 against the same float32 result
    assert ours_err < BF16_TOL
    assert ours_err <= max(1.5 * ref_err, 5e-3), f"ours {ours_err:.2e} vs transformers {ref_err:.2e}"
    bf16 = ours.to(torch.bfloat16)
    with torch.no_grad():
        pure = bf16(pixels.cuda().bfloat16(), **{k: v.cuda() for k, v in kwargs.items()})
    assert rel_err(pure[key].float().cpu(), cpu[key]) < BF16_TOL


def test_compiled_equals_eager():
    config, pixels, mask = _inputs()
    model = _perturb(videomae.VideoMAEForPreTraining(config)).cuda().eval()
    compiled = torch.compile(model)
    pixels, mask = pixels.cuda(), mask.cuda()
    with torch.no_grad():
        eager = model(pixels, mask)
        fast = compiled(pixels, mask)
    assert rel_err(fast.logits, eager.logits) < 1e-3
    assert abs(float(fast.loss) - float(eager.loss)) / float(eager.loss) < 1e-3


def test_training_step_on_gpu_reduces_loss():
    """Overfit one batch of smooth (learnable) videos: the reconstruction loss must fall."""
    config = videomae.VideoMAEConfig(**{**CFG, "norm_pix_loss": False})
    g = torch.Generator().manual_seed(0)
    coarse = torch.randn(8 * config.num_frames, 3, 4, 4, generator=g)
    pixels = torch.nn.functional.interpolate(coarse, size=config.image_hw, mode="bilinear")
    pixels = pixels.reshape(8, config.num_frames, 3, *config.image_hw).cuda()
    mask = videomae.tube_mask(config.grid_size, 0.75, 8, generator=g).cuda()
    torch.manual_seed(0)
    model = videomae.VideoMAEForPreTraining(config).cuda().train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    losses = []
    for _ in range(30):
        with torch.autocast("cuda", torch.bfloat16):
            loss = model(pixels, mask).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_attention_kernel_choice_on_gpu(monkeypatch):
    """ViT-B's attention shape: on Hopper cuDNN's kernel runs, torch's choice or asked for, and
    the output is torch's own; a torch whose choice would be flash (2.4, for one) is asked for cuDNN."""
    import torch.nn.functional as F

    from videomae import sdpa

    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(2, 12, 1568, 64, device="cuda", dtype=torch.bfloat16, generator=g) for _ in range(3))
    monkeypatch.setattr(sdpa, "_asks", {})
    monkeypatch.setattr(sdpa, "_notes", {})
    reference = F.scaled_dot_product_attention(q, k, v)
    assert rel_err(sdpa.scaled_dot_product_attention(q, k, v), reference) < BF16_TOL
    (note,) = sdpa.chosen().values()
    hopper = torch.cuda.get_device_capability() >= (9, 0)
    assert ("CUDNN_ATTENTION" in note) == hopper, note
    monkeypatch.setattr(sdpa, "_asks", {})
    monkeypatch.setattr(sdpa, "_default_backend", lambda *args: "FLASH_ATTENTION")
    assert rel_err(sdpa.scaled_dot_product_attention(q, k, v), reference) < BF16_TOL
    (note,) = sdpa.chosen().values()
    assert note.startswith("CUDNN_ATTENTION (asked for") == hopper, note


def test_fused_gelu_runs_in_bf16_inference_only(monkeypatch):
    """fc1 + GELU as one cuBLASLt call in bf16 inference: every block takes it, the logits stay
    within bf16's error of float32 and of the unfused model; training and "eager" do not take it."""
    from videomae import fused

    config, pixels, _ = _inputs()
    calls = []
    original = fused.fc1_gelu
    monkeypatch.setattr(fused, "fc1_gelu", lambda fc1, x, dtype=None: calls.append(dtype) or original(fc1, x, dtype))
    model = _perturb(videomae.VideoMAEForVideoClassification(config)).cuda().eval()
    reference = model(pixels.cuda()).logits.detach()  # float32, gradients on: unfused
    assert not calls
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):  # as classify / embed run
        autocast = model(pixels.cuda()).logits.float()
    assert calls == [torch.bfloat16] * config.num_hidden_layers and rel_err(autocast, reference) < BF16_TOL
    calls.clear()
    model = model.bfloat16()
    x = pixels.cuda().bfloat16()
    with torch.inference_mode():
        fast = model(x).logits.float()
    assert len(calls) == config.num_hidden_layers
    for module in model.modules():
        if isinstance(module, videomae.modeling.Mlp):
            module.explicit = True
    with torch.inference_mode():
        plain = model(x).logits.float()
    assert len(calls) == config.num_hidden_layers
    assert rel_err(fast, reference) < BF16_TOL and rel_err(fast, plain) < BF16_TOL
    model(x).logits.sum().backward()  # training: the separate GELU, which has a backward
    assert len(calls) == config.num_hidden_layers
    eager = videomae.VideoMAEForVideoClassification(videomae.VideoMAEConfig(**CFG, attn_implementation="eager"))
    with torch.inference_mode():
        eager.cuda().bfloat16().eval()(x)
    assert len(calls) == config.num_hidden_layers
