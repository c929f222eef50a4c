"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest


@pytest.fixture
def transformers():
    """transformers, the reference implementation. Tests that compare with it take this fixture
    and are skipped where it is not installed; the other tests of their module still run."""
    return pytest.importorskip("transformers")


# Under CI every optional part is installed (scripts/test.sh installs the extras), so a skip
# there means a part went untested. Only the tests that need hardware or privileges CI lacks
# may skip: a GPU (CUDA, NVDEC) or running as a user other than root.
ALLOWED_SKIPS = ("cuda", "gpu", "nvdec", "pynvvideocodec", "root")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # noqa: ANN001, ANN201
    outcome = yield
    report = outcome.get_result()
    import os

    if report.skipped and os.environ.get("CI", "").lower() == "true":
        reason = str(report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr)
        if not any(word in reason.lower() for word in ALLOWED_SKIPS):
            report.outcome = "failed"
            report.longrepr = f"skipped under CI, where every optional part should be installed: {reason}"
