"""Feature files: one row per video, with the videos' names beside the matrix."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

FEATURE_SUFFIXES = (".npy", ".npz", ".parquet")


def check_feature_path(out: str | os.PathLike) -> Path:
    """`out` if its format can be written here; else an error saying which formats can. Call it
    before hours of embedding, not after."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in FEATURE_SUFFIXES:
        raise ValueError(f"--out {out}: unknown format {out.suffix or '(no extension)'}; use .npy, .npz or .parquet")
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ValueError(f"--out {out}: writing .parquet needs pyarrow (pip install pyarrow); "
                             f"or choose .npy or .npz") from None
    return out


def write_features(out: str | os.PathLike, names: list[str], matrix: np.ndarray) -> list[Path]:
    """.npy (+ .txt of names, one a line), .npz (arrays features and names) or .parquet
    (columns video, features). Returns the files written."""
    out = check_feature_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix == ".npy":
        np.save(out, matrix)
        names_path = out.with_suffix(".txt")
        names_path.write_text("".join(n + "\n" for n in names))
        return [out, names_path]
    if suffix == ".npz":
        np.savez(out, features=matrix, names=np.array(names))
        return [out]
    import pyarrow as pa
    import pyarrow.parquet as pq

    column = pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), matrix.shape[1])
    pq.write_table(pa.table({"video": pa.array(names), "features": column}), out)
    return [out]


__all__ = ["write_features", "check_feature_path", "FEATURE_SUFFIXES"]
