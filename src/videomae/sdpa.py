"""Which fused attention kernel runs on a GPU: cuDNN's where it is the fastest, torch's choice elsewhere.

Measured on an H200 (`benchmarks/attention.py`, torch 2.11, cuDNN 9.19, bf16, 12 heads of 64):
at ViT-B's 1,568 tokens cuDNN's kernel takes 0.44 ms forward and 1.45 ms forward + backward,
flash 0.58 and 2.22, the memory-efficient kernel 1.08 and 4.50; at the pretraining encoder's
160 visible tokens cuDNN is fastest forward (0.088 against 0.115-0.118 ms) and the three are
within 5% forward + backward. All agree with float32 attention to 2e-3. torch 2.11 already
runs cuDNN's kernel there by itself; releases that put it last in their order (torch 2.4, for
one) run flash instead, and are asked for cuDNN here, once per shape, after a check that cuDNN
runs the shape and agrees with torch's own choice. Other GPUs (cuDNN's fused kernel is for
Hopper and later), float32 and attention dropout keep torch's choice.

Asking sets torch's process-wide backend flags for the duration of the call (`sdpa_kernel`),
so it is skipped under `torch.compile` (the compiled graph keeps torch's choice) and is not
meant for threads that run attention at the same moment with other wishes. `chosen()` says
what each shape ran.
"""

from __future__ import annotations

import threading

import torch
import torch.nn.functional as F

try:
    from torch.nn.attention import SDPBackend, sdpa_kernel
except ImportError:  # torch older than 2.3: no backend choice to make
    SDPBackend = sdpa_kernel = None  # type: ignore[assignment,misc]

_lock = threading.Lock()
_asks: dict[tuple, bool] = {}  # shape key -> run under cuDNN explicitly
_notes: dict[str, str] = {}  # readable shape -> what runs


def plan(capability: tuple[int, int], dtype: torch.dtype, dropout: float, default: str,
         cudnn: str | None) -> tuple[bool, str]:
    """Whether to ask for cuDNN, and a note saying what runs. `default` is the kernel torch picks
    by itself (SDPBackend name); `cudnn` is None when cuDNN ran the shape and agreed with it, else
    why not (only asked for when needed)."""
    if capability < (9, 0) or dtype not in (torch.bfloat16, torch.float16) or dropout > 0:
        return False, f"{default} (torch's choice)"
    if default in ("CUDNN_ATTENTION", "unknown"):
        return False, f"{default} (torch's choice)"
    if cudnn is None:
        return True, f"CUDNN_ATTENTION (asked for; torch's choice would be {default})"
    return False, f"{default} (torch's choice; cuDNN: {cudnn})"


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 dropout_p: float = 0.0) -> torch.Tensor:
    """F.scaled_dot_product_attention on (B, nh, N, hd) inputs, with cuDNN's kernel asked for
    where torch would pick a slower one (see the module's docstring)."""
    if not q.is_cuda or sdpa_kernel is None or torch.compiler.is_compiling():
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    key = (q.device.index, q.dtype, tuple(q.shape[-2:]), q.requires_grad, dropout_p > 0)
    ask = _asks.get(key)
    if ask is None:
        ask = _decide(key, q, k, v, dropout_p)
    if not ask:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)


def chosen() -> dict[str, str]:
    """What each attention shape met so far ran, e.g. {'bfloat16, 1568 tokens, head dim 64, cuda:0':
    'CUDNN_ATTENTION (torch's choice)'}."""
    with _lock:
        return dict(_notes)


def _decide(key: tuple, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float) -> bool:
    capability = torch.cuda.get_device_capability(q.device)
    default = _default_backend(q, k, v, dropout_p)
    cudnn = None
    if plan(capability, q.dtype, dropout_p, default, None)[0]:
        cudnn = _cudnn_disagrees(q, k, v)
    ask, note = plan(capability, q.dtype, dropout_p, default, cudnn)
    name = (f"{str(q.dtype).removeprefix('torch.')}, {q.shape[-2]} tokens, head dim {q.shape[-1]}, "
            f"{q.device}{', training' if q.requires_grad else ''}")
    with _lock:
        _asks[key] = ask
        _notes[name] = note
    return ask


def _default_backend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float) -> str:
    """The SDPBackend name torch's dispatcher picks for these inputs."""
    try:
        return SDPBackend(torch._fused_sdp_choice(q, k, v, dropout_p=dropout_p)).name
    except (AttributeError, RuntimeError, ValueError):  # a torch without the probe: keep its choice
        return "unknown"


def _cudnn_disagrees(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> str | None:
    """None when cuDNN's kernel runs these inputs and agrees with torch's choice (2e-2 relative,
    bf16 rounding is about 4e-3); else why not."""
    with torch.no_grad():
        q, k, v = q.detach(), k.detach(), v.detach()
        reference = F.scaled_dot_product_attention(q, k, v).float()
        try:
            with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                out = F.scaled_dot_product_attention(q, k, v).float()
        except RuntimeError as err:
            return f"cannot run this shape ({str(err).splitlines()[0][:80]})"
        error = float((out - reference).norm() / reference.norm().clamp_min(1e-12))
    return None if error <= 2e-2 else f"differs by {error:.1e}"
