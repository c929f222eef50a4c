"""The web page at `/` in a real browser: headless Chromium loads it from a `videomae serve`
process on 127.0.0.1, a clip is chosen in its file input, and the top-5 it shows must be the
library's top-5 for that clip.

Skipped only where Chromium is not installed and CI is not set; `.ci/run` installs the
Debian package, so in CI a missing browser is a failure. VIDEOMAE_SERVE_SCREENSHOT=FILE.png
also writes the page's screenshot there (docs/images/serve.png is made so).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from browser import Browser, find_chromium  # noqa: E402
from serve_fixtures import LABELS, make_checkpoints, make_clip, running_server  # noqa: E402

from videomae import pipeline  # noqa: E402

@pytest.fixture(scope="module")
def chromium() -> str:
    """The browser; in CI (CI=true) its absence fails the test instead of skipping it."""
    path = find_chromium()
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Chromium is not installed, and CI must test the page: .ci/run installs the Debian package "
                        "`chromium`")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return path


def test_the_page_classifies_a_chosen_clip_and_shows_the_top_5(chromium: str, tmp_path: Path) -> None:
    checkpoints = make_checkpoints(tmp_path)
    clip = make_clip(tmp_path / "gliding square.mp4", label=1, num_frames=48, size=96)
    model = pipeline.load_classifier(str(checkpoints["classifier"]))
    processor = pipeline.load_processor(str(checkpoints["classifier"]), model.config)
    [result] = pipeline.classify_videos([clip], model, processor, num_clips=2, num_workers=0)
    expected = [(label, f"{score * 100:.1f}%") for label, _, score in result.top_k(5)]

    with running_server(Path(checkpoints["classifier"].name), "--num-clips", "2", cwd=tmp_path) as server, \
            Browser(chromium) as browser:
        browser.navigate(server.url + "/")
        browser.wait_until("document.getElementById('model').textContent.includes('VideoMAEForVideoClassification')")
        browser.set_files("#file", [str(clip)])
        state = browser.wait_until("['done', 'error'].includes(document.getElementById('status').dataset.state) && "
                                   "document.getElementById('status').dataset.state")
        status = browser.evaluate("document.getElementById('status').textContent")
        assert state == "done", status
        shown = browser.evaluate("[...document.querySelectorAll('#top5 li')].map(li => "
                                 "[li.querySelector('.label').textContent, li.querySelector('.score').textContent])")
        assert [tuple(row) for row in shown] == expected
        assert all(label in LABELS for label, _ in shown)
        frames = browser.wait_until("(() => { const img = document.getElementById('frames'); "
                                    "return img.complete && img.naturalWidth && [img.naturalWidth, img.naturalHeight] "
                                    "})()")
        assert frames == [4 * 32 + 3 * 2, 32]  # the 4 frames of the first clip, 32 x 32, 2-pixel gaps
        assert "gliding square.mp4" in status
        picture = browser.screenshot()
    assert picture[:8] == b"\x89PNG\r\n\x1a\n" and len(picture) > 10_000
    target = os.environ.get("VIDEOMAE_SERVE_SCREENSHOT")
    if target:
        Path(target).write_bytes(picture)


def test_the_page_shows_a_pretraining_checkpoints_reconstruction(chromium: str, tmp_path: Path) -> None:
    make_checkpoints(tmp_path)
    clip = make_clip(tmp_path / "clip.mp4", num_frames=48, size=96)
    with running_server(Path("pretraining"), cwd=tmp_path) as server, Browser(chromium) as browser:
        browser.navigate(server.url + "/")
        browser.wait_until("document.getElementById('model').textContent.includes('VideoMAEForPreTraining')")
        browser.set_files("#file", [str(clip)])
        browser.wait_until("['done', 'error'].includes(document.getElementById('status').dataset.state)")
        status = browser.evaluate("document.getElementById('status').textContent")
        assert status == "clip.mp4: " + status.split(": ", 1)[1] and "32-d features" in status, status
        size = browser.wait_until("(() => { const img = document.getElementById('reconstruction'); "
                                  "return img.complete && img.naturalWidth && [img.naturalWidth, img.naturalHeight] "
                                  "})()")
        assert size == [3 * 128 + 2 * 4, 128]  # original | masked | reconstruction, 32 px frames enlarged 4x
        assert browser.evaluate("document.getElementById('top5').children.length") == 0  # no classifier, no scores
