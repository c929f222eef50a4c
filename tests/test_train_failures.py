"""When broken videos stop training: the path check, the kinds of failure, the fraction rule."""

from __future__ import annotations

import pytest

from videomae.train.failures import FailureLedger, TooManyFailedVideos, check_paths, count_kinds, failure_kind


def test_missing_paths_are_counted_and_the_first_five_named(tmp_path):
    (tmp_path / "here.mp4").write_bytes(b"x")
    paths = [str(tmp_path / "here.mp4")] + [str(tmp_path / f"gone{i}.mp4") for i in range(7)]
    with pytest.raises(FileNotFoundError, match=r"7 of 8 video\(s\) do not exist, e\.g\. .*gone0\.mp4, .*gone4\.mp4, "
                                                r"\.\.\.; check .*data_root") as err:
        check_paths(paths)
    assert "gone5" not in str(err.value) and "here.mp4" not in str(err.value)
    check_paths(paths[:1])  # all there: nothing to say


def test_failures_are_counted_by_kind_without_names_or_details():
    failures = {"a.mp4": "VideoDecodeError: a.mp4: not a readable video (Invalid data found)",
                "b.mp4": "VideoDecodeError: b.mp4: empty file (0 bytes)",
                "c.mp4": "VideoDecodeError: c.mp4: not a readable video (moov atom not found)",
                "d.mp4": "OSError: [Errno 5] Input/output error"}
    assert failure_kind("a.mp4", failures["a.mp4"]) == "not a readable video"
    assert count_kinds(failures) == {"not a readable video": 2, "empty file": 1, "[Errno 5] Input/output error": 1}


def _batch(videos: int, failed: list[str]) -> dict:
    return {"num_videos": videos, "failures": [(p, f"VideoDecodeError: {p}: empty file (0 bytes)") for p in failed]}


def test_an_epoch_stops_only_above_the_allowed_fraction():
    ledger = FailureLedger(max_fraction=0.5)
    ledger.add(_batch(4, ["a", "b"]))
    ledger.after_step(clips=2)
    assert ledger.close_epoch("epoch 0") == {"a": "VideoDecodeError: a: empty file (0 bytes)",
                                             "b": "VideoDecodeError: b: empty file (0 bytes)"}
    assert (ledger.tried, ledger.failed) == (0, {})  # the next epoch counts afresh
    ledger.add(_batch(4, ["a", "b", "c"]))
    with pytest.raises(TooManyFailedVideos, match=r"epoch 1: 3 of 4 .*\(75%, more than max_failed_fraction 50%\): "
                                                  r"empty file \(3\)"):
        ledger.close_epoch("epoch 1")


def test_only_the_first_step_stops_when_all_its_videos_failed():
    ledger = FailureLedger()
    ledger.add(_batch(2, ["a", "b"]))
    with pytest.raises(TooManyFailedVideos, match=r"first batch \(2\) failed to decode: empty file \(2\)"):
        ledger.after_step(clips=0)
    later = FailureLedger()
    later.after_step(clips=4)
    later.after_step(clips=0)  # a whole batch of broken files later on is left to the epoch's fraction
