"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest


@pytest.fixture
def transformers():
    """transformers, the reference implementation. Tests that compare with it take this fixture
    and are skipped where it is not installed; the other tests of their module still run."""
    return pytest.importorskip("transformers")
