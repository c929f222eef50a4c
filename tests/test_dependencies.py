"""What pyproject.toml promises about dependencies holds: the transformers the parity tests
compare against is the pinned one, and the code uses no torch API newer than the torch floor
(CI runs one torch, so the floor rests on this audit, not on a run)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

# torch APIs newer than 2.0 that videomae uses, or might be tempted to, and the release that
# brought each (from the torch release notes and versioned docs).
TORCH_APIS = {
    r"\.compile\(\*\*": (2, 2),                     # nn.Module.compile
    r"torch\.compiler\.is_compiling": (2, 3),
    r"torch\.amp\.GradScaler": (2, 3),              # device-generic GradScaler
    r"\"device_id\"": (2, 3),                       # init_process_group(device_id=)
    r"add_safe_globals": (2, 4),
    r"nn\.RMSNorm|F\.rms_norm": (2, 4),
    r"\.set_submodule\(": (2, 5),
    r"serialization\.safe_globals": (2, 5),
    r"enable_gqa": (2, 5),
    r"flex_attention": (2, 5),
    r"torch\.compiler\.set_stance": (2, 6),
    r"torch\.accelerator": (2, 6),
    r"in_order=": (2, 6),                           # DataLoader(in_order=)
    r"torch\.nn\.attention\.varlen|varlen_attn": (2, 9),
}


def _floor(name: str) -> tuple[int, ...]:
    (spec,) = [d for d in PYPROJECT["dependencies"] if re.match(rf"{name}\b", d)]
    return tuple(int(p) for p in re.search(r">=\s*([\d.]+)", spec).group(1).split("."))


def test_the_code_uses_no_torch_api_newer_than_the_floor():
    floor = _floor("torch")
    sources = {p: p.read_text() for p in (ROOT / "src" / "videomae").rglob("*.py")}
    too_new = [f"{p.relative_to(ROOT)}: {pattern} needs torch {'.'.join(map(str, version))}"
               for pattern, version in TORCH_APIS.items() if version > floor
               for p, text in sources.items() if re.search(pattern, text)]
    assert not too_new, f"torch>={'.'.join(map(str, floor))} in pyproject.toml, but: {too_new}"
    used = [v for pattern, v in TORCH_APIS.items() if any(re.search(pattern, t) for t in sources.values())]
    assert max(used) <= floor  # the audit finds what it looks for: some are in use


def test_the_tests_compare_against_the_pinned_transformers():
    transformers = pytest.importorskip("transformers")
    (spec,) = [d for d in PYPROJECT["optional-dependencies"]["test"] if d.startswith("transformers")]
    assert "==" in spec, f"{spec}: the test extra pins transformers so CI does not drift with its releases"
    assert transformers.__version__ == spec.split("==")[1]
