"""The VideoMAE model, bottom-up: attention, MLP, block, encoder, decoder, heads.

Numerically the same function as transformers' VideoMAE; the layout inside differs where
that is faster (one fused qkv projection, SDPA attention, visible-only patch embedding). The
mapping to transformers' and the original checkpoint names lives in `checkpoint.py`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .config import VideoMAEConfig
from .constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from . import devices, fused, sdpa
from .fp8 import Float8Linear
from .initialization import init_weights
from .masking import check_mask, decoder_targets, gather_tokens, pretraining_targets, split_indices
from .outputs import BaseModelOutput, ImageClassifierOutput, VideoMAEForPreTrainingOutput
from .positions import grid_of, resize_table, sinusoid_table
from .pretrained import PreTrainedVideoMAE

_ACT = {
    "gelu": nn.GELU,
    "gelu_new": lambda: nn.GELU(approximate="tanh"),
    "gelu_pytorch_tanh": lambda: nn.GELU(approximate="tanh"),
    "gelu_fast": lambda: nn.GELU(approximate="tanh"),
    "quick_gelu": lambda: _QuickGELU(),
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
}


class _QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


def drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth: drop the whole residual branch for a random subset of samples."""
    if rate == 0.0 or not training:
        return x
    keep = 1.0 - rate
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * mask / keep


class DropPath(nn.Module):
    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.rate, self.training)

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


# --------------------------------------------------------------------------- layers
class Attention(nn.Module):
    """Multi-head self-attention with one fused qkv projection; key has no bias."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool, attn_drop: float, proj_drop: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = self.v_bias = None
        self.attn_drop = attn_drop
        self.explicit = False  # softmax(q k^T) v written out, not the fused kernel (attn_implementation="eager")
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop) if proj_drop > 0 else nn.Identity()

    def unfuse(self) -> None:
        """Replace the fused projection by three Linears named as transformers names them
        (`query`, `key`, `value`; q and v carry the biases), so that adapters such as PEFT's LoRA
        can target `query` and `value`. Same function, three matrix products instead of one."""
        if self.qkv is None:
            return
        dim = self.qkv.in_features
        weights = self.qkv.weight.detach().chunk(3, dim=0)
        biases = (self.q_bias, None, self.v_bias)
        for name, weight, bias in zip(("query", "key", "value"), weights, biases):
            linear = nn.Linear(dim, dim, bias=bias is not None, device=weight.device, dtype=weight.dtype)
            linear.weight = nn.Parameter(weight.clone(), requires_grad=self.qkv.weight.requires_grad)
            if bias is not None:
                linear.bias = nn.Parameter(bias.detach().clone(), requires_grad=bias.requires_grad)
            setattr(self, name, linear)
        del self.qkv, self.q_bias, self.v_bias
        self.qkv = self.q_bias = self.v_bias = None

    def fuse(self) -> None:
        """Undo `unfuse` (after merging adapters into the weights): one projection again."""
        if self.qkv is not None:
            return
        parts = [getattr(self, name) for name in ("query", "key", "value")]
        if not all(isinstance(p, nn.Linear) for p in parts):
            raise ValueError("query / key / value are not plain Linears (adapters not merged?): merge them first, "
                             "e.g. peft_model.merge_and_unload()")
        dim = parts[0].in_features
        del self.qkv, self.q_bias, self.v_bias
        self.qkv = nn.Linear(dim, 3 * dim, bias=False, device=parts[0].weight.device, dtype=parts[0].weight.dtype)
        self.qkv.weight = nn.Parameter(torch.cat([p.weight.detach() for p in parts]))
        if parts[0].bias is not None:
            self.q_bias = nn.Parameter(parts[0].bias.detach().clone())
            self.v_bias = nn.Parameter(parts[2].bias.detach().clone())
        else:
            self.q_bias = self.v_bias = None
        del self.query, self.key, self.value

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k, v, each (B, nh, N, hd)."""
        b, n, _ = x.shape
        if self.qkv is None:  # unfused, for adapters
            return tuple(getattr(self, name)(x).reshape(b, n, self.num_heads, self.head_dim).transpose(1, 2)
                         for name in ("query", "key", "value"))  # type: ignore[return-value]
        bias = None
        if self.q_bias is not None:
            bias = torch.cat([self.q_bias, torch.zeros_like(self.v_bias), self.v_bias])
        if type(self.qkv) is nn.Linear:  # its forward is F.linear; the bias rides in the matrix product
            qkv = F.linear(x, self.qkv.weight, bias)  # also a torchao weight subclass, which dispatches itself
        else:  # swapped by a quantizer (quantize_dynamic, QAT, ...): its own forward, then the q / v bias
            qkv = self.qkv(x)
            qkv = qkv if bias is None else qkv + bias.to(qkv.dtype)
        qkv = qkv.reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (3, B, nh, N, hd)
        return qkv.unbind(0)

    def forward(
        self, x: torch.Tensor, head_mask: torch.Tensor | None = None, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        b, n, c = x.shape
        q, k, v = self.project(x)
        dropout = self.attn_drop if self.training else 0.0
        weights = None
        if need_weights or head_mask is not None or self.explicit:
            weights = (q @ k.transpose(-2, -1)) * self.scale  # (B, nh, N, N)
            weights = weights.softmax(dim=-1)
            weights = F.dropout(weights, dropout, self.training)
            if head_mask is not None:
                weights = weights * head_mask
            out = weights @ v
        elif _blocks_beat_the_fused_kernel(q):
            out = blocked_attention(q, k, v, self.scale)
        else:
            out = sdpa.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
        out = out.transpose(1, 2).reshape(b, n, c)  # (B, N, nh*hd)
        return self.proj_drop(self.proj(out)), (weights if need_weights else None)


def blocked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float,
                      block: int = 64) -> torch.Tensor:
    """softmax(q k^T * scale) v, `block` queries at a time: (B, nh, N, hd) each -> (B, nh, N, hd).
    Two large matrix products a block, so bf16 runs on the CPU's bf16 units at their speed."""
    q = (q * scale).contiguous()  # contiguous once: a strided operand is copied by every product
    keys = k.contiguous().transpose(-2, -1)  # (B, nh, hd, N), read transposed without a copy
    v = v.contiguous()
    out = torch.empty_like(q)
    for start in range(0, q.shape[-2], block):
        scores = q[..., start:start + block, :] @ keys  # (B, nh, block, N)
        out[..., start:start + block, :] = scores.softmax(dim=-1) @ v
    return out


def _blocks_beat_the_fused_kernel(q: torch.Tensor) -> bool:
    """bf16 inference on a CPU with AVX512-BF16 but no AMX: there torch's fused attention kernel
    multiplies small unpacked tiles and runs no faster than in fp32, and `blocked_attention` takes
    half its time (a ViT-B layer, 1568 tokens, one core: 40-45 against 92 ms; 64 queries a block
    measured best, 128 about 15% slower). With AMX the fused kernel packs its tiles for the unit
    and wins: 22.6 ms a layer against 39.1 blocked (one core, a Xeon with AMX)."""
    return (q.device.type == "cpu" and q.dtype == torch.bfloat16 and not q.requires_grad
            and devices.cpu_bf16_units() == "AVX512-BF16")


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, act: str, drop: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = _ACT[act]()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop) if drop > 0 else nn.Identity()
        self.explicit = False  # True: the reference computation (no fused GELU), as Attention.explicit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if type(self.fc2) is Float8Linear and type(self.act) is nn.GELU and self.act.approximate == "none":
            return self.drop(self.fc2.forward_gelu(self.fc1(x)))  # GELU and fc2's input quantisation in one pass
        dtype = None if self.explicit else fused.fused_dtype(self.fc1, self.act, x)
        if dtype is not None:
            return self.drop(self.fc2(fused.fc1_gelu(self.fc1, x, dtype)))
        return self.drop(self.fc2(self.act(self.fc1(x))))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)); x + mlp(norm2(x))."""

    def __init__(self, config: VideoMAEConfig, dim: int, heads: int, mlp_dim: int, drop_path_rate: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.attn = Attention(dim, heads, config.qkv_bias, config.attention_probs_dropout_prob,
                              config.hidden_dropout_prob)
        self.attn.explicit = config.attn_implementation == "eager"
        self.drop_path1 = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.mlp = Mlp(dim, mlp_dim, config.hidden_act, config.hidden_dropout_prob)
        self.mlp.explicit = self.attn.explicit
        self.drop_path2 = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(
        self, x: torch.Tensor, head_mask: torch.Tensor | None = None, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attn_out, weights = self.attn(self.norm1(x), head_mask, need_weights)
        x = x + self.drop_path1(attn_out)
        x = x + self.drop_path2(self.mlp(self.norm2(x)))
        return x, weights


def run_blocks(
    blocks: nn.ModuleList,
    x: torch.Tensor,
    head_mask: torch.Tensor | None,
    output_attentions: bool,
    output_hidden_states: bool,
    use_checkpoint: bool | dict,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None, tuple[torch.Tensor, ...] | None]:
    """Run a stack of blocks, collecting hidden states (input first) and attention maps.
    `use_checkpoint`: False, True, or the keyword arguments of torch.utils.checkpoint."""
    checkpoint_kwargs = {"use_reentrant": False, **(use_checkpoint if isinstance(use_checkpoint, dict) else {})}
    hidden: list[torch.Tensor] = [x] if output_hidden_states else []
    attentions: list[torch.Tensor] = []
    for i, block in enumerate(blocks):
        layer_mask = head_mask[i] if head_mask is not None else None
        if use_checkpoint is not False and torch.is_grad_enabled():
            x, weights = checkpoint(block, x, layer_mask, output_attentions, **checkpoint_kwargs)
        else:
            x, weights = block(x, layer_mask, output_attentions)
        if output_hidden_states:
            hidden.append(x)
        if output_attentions:
            attentions.append(weights)
    return x, (tuple(hidden) if output_hidden_states else None), (tuple(attentions) if output_attentions else None)


def _fixed_table(trained: tuple[int, int, int], grid: tuple[int, int, int], dim: int) -> torch.Tensor:
    """The sin-cos table made for the `trained` grid, resized in 3-D to `grid`."""
    return resize_table(sinusoid_table(trained[0] * trained[1] * trained[2], dim), trained, grid)


def _to_device(index: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Token indices made on the CPU go to the GPU through pinned memory, so the copy does not
    wait for the work already queued there."""
    if index.device.type == "cpu" and device.type == "cuda":
        index = index.pin_memory()
    return index.to(device, non_blocking=True)


# --------------------------------------------------------------------------- encoder
class PatchEmbed(nn.Module):
    """Tubelet embedding: a Conv3d with kernel = stride = (tubelet, patch, patch), computed as
    one matrix product on patchified pixels (much faster than the generic 3D convolution
    kernels, and the output is token-major)."""

    def __init__(self, config: VideoMAEConfig) -> None:
        super().__init__()
        t, p = config.tubelet_size, config.patch_size
        self.proj = nn.Conv3d(config.num_channels, config.hidden_size, kernel_size=(t, p, p), stride=(t, p, p))

    def forward(self, pixel_values: torch.Tensor, visible_index: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, C, H, W) -> (B, N or N_visible, D). With `visible_index` (B, N_visible) only
        those tubelets are gathered and projected."""
        weight = self.proj.weight  # (D, C, t, p, p)
        d, c, t, p, _ = weight.shape
        b, frames, _, h, w = pixel_values.shape
        x = pixel_values.reshape(b, frames // t, t, c, h // p, p, w // p, p)
        x = x.permute(0, 1, 4, 6, 3, 2, 5, 7)  # (B, gt, gh, gw, C, t, p, p): the conv weight's order
        x = x.reshape(b, -1, c * t * p * p)  # (B, N, C*t*p*p)
        if visible_index is not None:
            x = gather_tokens(x, visible_index)  # (B, N_visible, C*t*p*p)
        return F.linear(x, weight.reshape(d, -1).to(x.dtype), self.proj.bias)


class VideoMAEModel(PreTrainedVideoMAE):
    """The encoder. Returns token features; `bool_masked_pos` drops masked tokens."""

    def __init__(self, config: VideoMAEConfig, *, skip_init: bool = False) -> None:
        super().__init__(config)
        self.patch_embed = PatchEmbed(config)
        trained = config.trained_grid
        if config.use_learnable_pos_emb:  # learned at the trained grid, resized on use
            self.pos_embed = nn.Parameter(torch.zeros(1, trained[0] * trained[1] * trained[2], config.hidden_size))
            self.position_embeddings = None
        else:
            self.pos_embed = None
            self.register_buffer("position_embeddings", _fixed_table(trained, config.grid_size, config.hidden_size),
                                 persistent=False)
        n = config.num_hidden_layers  # rates 0 .. drop_path_rate, as torch.linspace (in Python: meta-device safe)
        rates = [config.drop_path_rate * i / (n - 1) if n > 1 else 0.0 for i in range(n)]
        self.blocks = nn.ModuleList(
            Block(config, config.hidden_size, config.num_attention_heads, config.intermediate_size, rate)
            for rate in rates
        )
        self.norm = None if config.use_mean_pooling else nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init(skip_init)

    def check_pixels(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False) -> int:
        """Validate (B, T, C, H, W) pixels; return their number of tokens. With
        `interpolate_pos_encoding` any T, H, W that the tubelet and patch sizes divide are accepted."""
        c = self.config
        height, width = c.image_hw
        expected = f"(batch, {c.num_frames}, {c.num_channels}, {height}, {width})"
        if not isinstance(pixel_values, torch.Tensor):
            raise ValueError(f"pixel_values must be a tensor {expected}, got {type(pixel_values).__name__}")
        if pixel_values.dim() != 5:
            raise ValueError(f"pixel_values must have 5 dimensions {expected}, got shape {tuple(pixel_values.shape)}")
        if not pixel_values.is_floating_point():
            raise ValueError(f"pixel_values must be floating point (normalised pixels), got {pixel_values.dtype}")
        weights = self.patch_embed.proj.weight.dtype
        if pixel_values.dtype != weights and not torch.is_autocast_enabled(pixel_values.device.type):
            raise ValueError(f"pixel_values are {pixel_values.dtype} but the model's weights are {weights}: pass "
                             f"pixel_values.to({weights}), or run the model under torch.autocast")
        b, t, ch, h, w = pixel_values.shape
        shape = f"shape {tuple(pixel_values.shape)}, expected {expected}"
        if b == 0:
            raise ValueError(f"pixel_values is an empty batch: {shape}")
        if ch != c.num_channels:
            raise ValueError(f"pixel_values has {ch} channels, the model expects {c.num_channels}: {shape}")
        hint = "; or pass interpolate_pos_encoding=True to resize the position table to this clip"
        if interpolate_pos_encoding:
            if t < c.tubelet_size or t % c.tubelet_size or h < c.patch_size or h % c.patch_size or \
                    w < c.patch_size or w % c.patch_size:
                raise ValueError(f"pixel_values of {t} frames of {h}x{w}: frames must be a multiple of tubelet_size "
                                 f"{c.tubelet_size} and height and width of patch_size {c.patch_size}")
        elif t != c.num_frames:
            raise ValueError(f"pixel_values has {t} frames, the model expects {c.num_frames}: {shape}{hint}")
        elif (h, w) != (height, width):
            raise ValueError(f"pixel_values frames are {h}x{w}, the model expects {height}x{width}: {shape}{hint}")
        gt, gh, gw = grid_of(pixel_values, c.tubelet_size, c.patch_size)
        return gt * gh * gw

    def position_table(self, grid: tuple[int, int, int] | None = None) -> torch.Tensor:
        """The position table (1, T*H*W, hidden_size) for a token grid (default: the config's),
        resized in 3-D from the grid it was trained for."""
        grid = tuple(grid) if grid is not None else self.config.grid_size
        if self.pos_embed is not None:
            return resize_table(self.pos_embed, self.config.trained_grid, grid)
        if grid == self.config.grid_size:
            return self.position_embeddings
        table = _fixed_table(self.config.trained_grid, grid, self.config.hidden_size)
        return table.to(self.position_embeddings.device)

    def _head_mask(self, head_mask: torch.Tensor | None) -> torch.Tensor | None:
        """Broadcast (heads,) or (layers, heads) to (layers, 1, heads, 1, 1), as transformers does."""
        if head_mask is None:
            return None
        layers, heads = self.config.num_hidden_layers, self.config.num_attention_heads
        if head_mask.dim() == 1:
            head_mask = head_mask[None].expand(layers, -1)
        if tuple(head_mask.shape) != (layers, heads):
            raise ValueError(f"head_mask must have shape ({heads},) or ({layers}, {heads}), "
                             f"got {tuple(head_mask.shape)}")
        return head_mask[:, None, :, None, None].to(self.dtype)

    def forward(
        self,
        pixel_values: torch.Tensor,
        bool_masked_pos: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        interpolate_pos_encoding: bool = False,
    ) -> BaseModelOutput | tuple:
        """`interpolate_pos_encoding`: accept clips of another frame count or size, with the
        position table resized to their token grid (`positions.resize_table`)."""
        output_attentions, output_hidden_states, return_dict = self.output_options(
            output_attentions, output_hidden_states, return_dict)
        num_patches = self.check_pixels(pixel_values, interpolate_pos_encoding)
        visible = None
        if bool_masked_pos is not None:
            num_masked = check_mask(bool_masked_pos, pixel_values.shape[0], num_patches)
            visible, _ = split_indices(bool_masked_pos, num_masked)
            visible = _to_device(visible, pixel_values.device)
        out = self.encode(pixel_values, visible, head_mask, output_attentions, output_hidden_states)
        return out if return_dict else out.to_tuple()

    def encode(
        self,
        pixel_values: torch.Tensor,
        visible_index: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> BaseModelOutput:
        """The encoder on checked inputs; `visible_index` (B, N_visible) selects the tokens."""
        x = self.patch_embed(pixel_values, visible_index)  # (B, N or N_visible, D)
        grid = grid_of(pixel_values, self.config.tubelet_size, self.config.patch_size)
        pos = self.position_table(grid).to(x.dtype)
        pos = pos if visible_index is None else pos[0][visible_index]  # (1 or B, tokens, D)
        x, hidden, attentions = run_blocks(self.blocks, x + pos, self._head_mask(head_mask), output_attentions,
                                           output_hidden_states, self.gradient_checkpointing)
        if self.norm is not None:
            x = self.norm(x)
        return BaseModelOutput(last_hidden_state=x, hidden_states=hidden, attentions=attentions)


# --------------------------------------------------------------------------- pretraining
class VideoMAEDecoder(nn.Module):
    """Light decoder: blocks, a norm, and a head to pixels of one tubelet."""

    def __init__(self, config: VideoMAEConfig) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            Block(config, config.decoder_hidden_size, config.decoder_num_attention_heads,
                  config.decoder_intermediate_size, 0.0)
            for _ in range(config.decoder_num_hidden_layers)
        )
        self.norm = nn.LayerNorm(config.decoder_hidden_size)
        self.head = nn.Linear(config.decoder_hidden_size, config.patch_dim)
        self.gradient_checkpointing = False

    def forward(self, x: torch.Tensor, num_masked: int) -> torch.Tensor:
        """(B, N, Dd) with masked tokens last -> (B, num_masked, patch_dim)."""
        x, _, _ = run_blocks(self.blocks, x, None, False, False, self.gradient_checkpointing)
        return self.head(self.norm(x[:, -num_masked:]))


class VideoMAEForPreTraining(PreTrainedVideoMAE):
    """Encoder + decoder; the loss is MSE on the pixels of the masked tubelets. Set
    `image_mean` / `image_std` to the statistics the inputs were normalised with when they
    are not ImageNet's.

    VideoMAE V2's dual masking: with `decoder_masked_pos` the decoder gets mask tokens only
    where that mask keeps a position (False), and the loss covers the tokens both hidden from
    the encoder and kept by the decoder (see `masking.running_cell_mask`)."""

    def __init__(self, config: VideoMAEConfig, *, skip_init: bool = False) -> None:
        super().__init__(config)
        self.videomae = VideoMAEModel(config, skip_init=skip_init)
        self.encoder_to_decoder = nn.Linear(config.hidden_size, config.decoder_hidden_size, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, config.decoder_hidden_size))
        self.register_buffer("position_embeddings", _fixed_table(config.trained_grid, config.grid_size,
                                                                 config.decoder_hidden_size), persistent=False)
        self.decoder = VideoMAEDecoder(config)
        # The statistics pixel_values are normalised with; targets are un-normalised with them.
        self.image_mean: tuple[float, ...] = IMAGENET_DEFAULT_MEAN
        self.image_std: tuple[float, ...] = IMAGENET_DEFAULT_STD
        self.post_init(skip_init)

    def decoder_position_table(self, grid: tuple[int, int, int]) -> torch.Tensor:
        """The decoder's fixed table (1, T*H*W, decoder_hidden_size) for a token grid."""
        if tuple(grid) == self.config.grid_size:
            return self.position_embeddings
        table = _fixed_table(self.config.trained_grid, tuple(grid), self.config.decoder_hidden_size)
        return table.to(self.position_embeddings.device)

    def forward(
        self,
        pixel_values: torch.Tensor,
        bool_masked_pos: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        decoder_masked_pos: torch.Tensor | None = None,
        interpolate_pos_encoding: bool = False,
    ) -> VideoMAEForPreTrainingOutput | tuple:
        """`decoder_masked_pos` (batch, num_patches), True = not reconstructed: V2's decoder
        mask (None: V1, reconstruct every hidden token). `logits` are then the predictions at the
        positions it keeps, in ascending order."""
        if bool_masked_pos is None:
            raise ValueError("VideoMAEForPreTraining needs bool_masked_pos (batch, num_patches): which tokens "
                             "to hide and reconstruct; see videomae.tube_mask")
        num_patches = self.videomae.check_pixels(pixel_values, interpolate_pos_encoding)
        num_masked = check_mask(bool_masked_pos, pixel_values.shape[0], num_patches)
        if num_masked == 0:
            raise ValueError("bool_masked_pos masks no token: pretraining reconstructs the masked tokens, so mask "
                             "at least one (e.g. videomae.tube_mask(config.grid_size, 0.9))")
        output_attentions, output_hidden_states, return_dict = self.output_options(
            output_attentions, output_hidden_states, return_dict)
        visible, masked = split_indices(bool_masked_pos, num_masked)
        weight = None
        if decoder_masked_pos is not None:
            check_mask(decoder_masked_pos, pixel_values.shape[0], num_patches)
            masked, weight = decoder_targets(bool_masked_pos, decoder_masked_pos)
            weight = _to_device(weight, pixel_values.device)
        visible, masked = _to_device(visible, pixel_values.device), _to_device(masked, pixel_values.device)
        out = self.forward_indexed(pixel_values, visible, masked, head_mask, output_attentions, output_hidden_states,
                                   weight)
        return out if return_dict else out.to_tuple()

    def forward_indexed(
        self,
        pixel_values: torch.Tensor,
        visible_index: torch.Tensor,
        masked_index: torch.Tensor,
        head_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        loss_weight: torch.Tensor | None = None,
    ) -> VideoMAEForPreTrainingOutput:
        """The pretraining computation on token indices (from `masking.split_indices`): no
        data-dependent shapes and no host sync, so it compiles and graphs as one piece.
        `masked_index`: where the decoder gets mask tokens and predicts; `loss_weight` (B, n)
        1 where a prediction counts in the loss (None: all count)."""
        outputs = self.videomae.encode(pixel_values, visible_index, head_mask, output_attentions,
                                       output_hidden_states)
        x = self.encoder_to_decoder(outputs.last_hidden_state)  # (B, N_visible, Dd)
        grid = grid_of(pixel_values, self.config.tubelet_size, self.config.patch_size)
        pos = self.decoder_position_table(grid)[0].to(x.dtype)
        x = torch.cat([x + pos[visible_index], self.mask_token.to(x.dtype) + pos[masked_index]], dim=1)  # (B, n, Dd)
        logits = self.decoder(x, masked_index.shape[1])
        with torch.no_grad():
            targets = pretraining_targets(pixel_values, None, self.config.tubelet_size, self.config.patch_size,
                                          self.config.norm_pix_loss, masked_index, self.image_mean, self.image_std)
        if loss_weight is None:
            loss = F.mse_loss(logits.float(), targets.float())
        else:  # V2: mean over the tokens that count, as its engine_for_pretraining computes it
            per_token = (logits.float() - targets.float()).pow(2).mean(dim=-1)  # (B, n)
            loss = (per_token * loss_weight).sum() / loss_weight.sum().clamp(min=1)
        return VideoMAEForPreTrainingOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                            attentions=outputs.attentions)


# --------------------------------------------------------------------------- classification
class VideoMAEForVideoClassification(PreTrainedVideoMAE):
    """Encoder + pooling + a linear classifier (mean of tokens through fc_norm, or token 0)."""

    def __init__(self, config: VideoMAEConfig, *, skip_init: bool = False) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.videomae = VideoMAEModel(config, skip_init=skip_init)
        self.fc_norm = nn.LayerNorm(config.hidden_size) if config.use_mean_pooling else None
        self.classifier = nn.Linear(config.hidden_size, config.num_labels) if config.num_labels > 0 else nn.Identity()
        self.post_init(skip_init)

    def forward_features(self, pixel_values: torch.Tensor, **kwargs: Any) -> tuple[torch.Tensor, BaseModelOutput]:
        """Pooled features (B, hidden_size) fed to the classifier, and the encoder outputs."""
        outputs = self.videomae(pixel_values, return_dict=True, **kwargs)
        tokens = outputs.last_hidden_state
        pooled = self.fc_norm(tokens.mean(dim=1)) if self.fc_norm is not None else tokens[:, 0]
        return pooled, outputs

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        interpolate_pos_encoding: bool = False,
    ) -> ImageClassifierOutput | tuple:
        output_attentions, output_hidden_states, return_dict = self.output_options(
            output_attentions, output_hidden_states, return_dict)
        pooled, outputs = self.forward_features(pixel_values, head_mask=head_mask, output_attentions=output_attentions,
                                                output_hidden_states=output_hidden_states,
                                                interpolate_pos_encoding=interpolate_pos_encoding)
        logits = self.classifier(pooled)
        loss = self.loss(logits, labels) if labels is not None else None
        out = ImageClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                    attentions=outputs.attentions)
        return out if return_dict else out.to_tuple()

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Regression, single-label or multi-label loss, chosen as transformers chooses it."""
        n = self.config.num_labels
        labels = torch.as_tensor(labels).to(logits.device)
        problem = self.config.problem_type
        if problem is None:
            if n == 1:
                problem = "regression"
            elif labels.dtype in (torch.long, torch.int):
                problem = "single_label_classification"
            else:
                problem = "multi_label_classification"
            self.config.problem_type = problem
        if problem == "regression":
            return F.mse_loss(logits.squeeze(), labels.squeeze()) if n == 1 else F.mse_loss(logits, labels)
        if problem == "single_label_classification":
            flat = labels.reshape(-1)
            bad = (flat != -100) & ((flat < 0) | (flat >= n))
            if not torch.compiler.is_compiling() and bool(bad.any()):
                raise ValueError(f"labels must be in [0, {n}) (or -100 to ignore); got {flat[bad].tolist()}")
            return F.cross_entropy(logits.reshape(-1, n), flat)
        if tuple(labels.shape) != tuple(logits.shape):
            raise ValueError(f"multi-label targets must have shape {tuple(logits.shape)}, got {tuple(labels.shape)}")
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


__all__ = ["VideoMAEModel", "VideoMAEForPreTraining", "VideoMAEForVideoClassification", "sinusoid_table",
           "init_weights"]
