"""`videomae serve` as clients see it: a real server process on 127.0.0.1, a port the system
picks, a tiny model. Answers are compared with the library's own `classify_videos` /
`embed_videos` on the same file, so the service is checked for values, not only statuses."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from serve_fixtures import LABELS, make_checkpoints, make_clip, running_server, serve_command  # noqa: E402

from videomae import pipeline  # noqa: E402

TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serve")
    out = make_checkpoints(root)
    data = root / "data"
    (data / "sub").mkdir(parents=True)
    out["data"] = data
    out["clip"] = make_clip(data / "sub" / "clip.mp4")
    out["other"] = make_clip(root / "outside.mp4", label=2, seed=1)  # not under the data root
    (data / "escape.mp4").symlink_to(out["other"])  # a link inside that points outside
    out["text"] = root / "notes.mp4"
    out["text"].write_bytes(b"these are not the frames you are looking for\n" * 40)
    broken = bytearray(out["clip"].read_bytes())  # a valid container whose frames are zeros
    start = broken.find(b"mdat") + 4
    size = int.from_bytes(broken[start - 8:start - 4], "big")
    broken[start:start - 8 + size] = bytes(size - 8)
    out["broken"] = root / "broken.mp4"
    out["broken"].write_bytes(bytes(broken))
    out["tmp"] = root / "tmp"
    out["tmp"].mkdir()
    return out


@pytest.fixture(scope="module")
def server(files):  # noqa: ANN001,ANN201
    with running_server(files["classifier"], "--data-root", str(files["data"]), "--max-upload-mb", "1",
                        "--num-clips", "2", env={"TMPDIR": str(files["tmp"])}) as running:
        yield running


@pytest.fixture(scope="module")
def expected(files) -> dict[str, torch.Tensor]:  # noqa: ANN001
    """What the library gives for the clip: mean class scores and mean features over 2 clips."""
    model = pipeline.load_classifier(str(files["classifier"]))
    processor = pipeline.load_processor(str(files["classifier"]), model.config)
    [scores] = pipeline.classify_videos([files["clip"]], model, processor, num_clips=2, num_workers=0)
    [features] = pipeline.embed_videos([files["clip"]], model, processor, num_clips=2, num_workers=0)
    return {"scores": scores.output, "features": features.output}


def _top_k_matches(body: dict, scores: torch.Tensor, k: int) -> None:
    values, ids = scores.topk(k)
    assert [item["id"] for item in body["top_k"]] == ids.tolist()
    assert [item["label"] for item in body["top_k"]] == [LABELS[i] for i in ids.tolist()]
    torch.testing.assert_close(torch.tensor([item["score"] for item in body["top_k"]]), values, atol=2e-6, rtol=0)


def test_classify_an_upload_equals_the_library(server, files, expected) -> None:  # noqa: ANN001
    answer = server.upload("/v1/classify?top_k=5", files["clip"])
    assert answer.status == 200, answer.body
    body = answer.json()
    _top_k_matches(body, expected["scores"], 5)
    assert body["model"].endswith("classifier")
    assert len(body["clips"]) == 2 and all(0 <= c["start"] < c["end"] <= 24 / 16 + 1e-6 for c in body["clips"])
    assert body["video"] == {"frames": 24, "fps": 16.0, "width": 48, "height": 48}
    assert body["time_ms"]["total"] > 0 and set(body["time_ms"]) == {"total", "receive", "decode", "queue", "model"}


def test_multipart_and_path_give_the_same_answer(server, files, expected) -> None:  # noqa: ANN001
    by_form = server.multipart("/v1/classify?top_k=3", files["clip"])
    by_path = server.post_json("/v1/classify?top_k=3", {"path": "sub/clip.mp4"})
    assert by_form.status == 200 and by_path.status == 200, (by_form.body, by_path.body)
    _top_k_matches(by_form.json(), expected["scores"], 3)
    _top_k_matches(by_path.json(), expected["scores"], 3)


def test_embed_equals_the_library(server, files, expected) -> None:  # noqa: ANN001
    answer = server.upload("/v1/embed?per_clip=true&frames=true", files["clip"])
    assert answer.status == 200, answer.body
    body = answer.json()
    assert body["dim"] == 32 and len(body["clip_features"]) == 2
    torch.testing.assert_close(torch.tensor(body["features"]), expected["features"], atol=2e-6, rtol=0)
    assert body["frames_png"].startswith("data:image/png;base64,")


@pytest.mark.parametrize("name, status, words", [
    ("text", 415, "not a video container"),
    ("broken", 422, "does not decode"),
])
def test_bad_files_say_why(server, files, name, status, words) -> None:  # noqa: ANN001
    answer = server.upload("/v1/classify", files[name], headers={"X-Filename": f"{name}.mp4"})
    assert answer.status == status, answer.body
    assert words in answer.json()["error"] and f"{name}.mp4" in answer.json()["error"]
    assert str(files["tmp"]) not in answer.json()["error"]  # the temporary path is not shown


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_too_large_is_413(server, chunked) -> None:  # noqa: ANN001
    answer = server.request("POST", "/v1/classify", b"\0" * 1_100_000, {"Content-Type": "video/mp4"},
                            chunked=chunked)
    assert answer.status == 413 and "limit of 1,000,000 bytes" in answer.json()["error"]


@pytest.mark.parametrize("path, status", [
    ("../outside.mp4", 403),
    ("sub/../../outside.mp4", 403),
    ("escape.mp4", 403),  # a symbolic link out of the root
    ("/etc/passwd", 403),
    ("missing.mp4", 404),
])
def test_paths_outside_the_data_root_are_refused(server, path, status) -> None:  # noqa: ANN001
    answer = server.post_json("/v1/classify", {"path": path})
    assert answer.status == status, answer.body
    assert path in answer.json()["error"]


def test_model_description_and_page(server) -> None:  # noqa: ANN001
    info = server.request("GET", "/v1/model").json()
    assert info["architecture"] == "VideoMAEForVideoClassification" and info["tasks"] == ["classify", "embed"]
    assert info["labels"] == {str(i): name for i, name in enumerate(LABELS)}
    assert info["preprocessing"]["crop_size"] == {"height": 32, "width": 32}
    assert info["clip"] == {"num_frames": 4, "sampling_rate": 4, "num_clips": 2}
    assert server.request("POST", "/v1/reconstruct", b"x").status == 409  # a classifier cannot reconstruct
    page = server.request("GET", "/")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert b'id="top5"' in page.body and b'"/v1/model"' in page.body
    assert server.request("GET", "/healthz").json()["status"] == "ok"


def test_metrics_count_requests_and_batches(server, files) -> None:  # noqa: ANN001
    before = server.metrics()
    assert server.upload("/v1/classify", files["clip"]).status == 200
    after = server.metrics()
    key = 'videomae_requests_total{endpoint="/v1/classify",status="200"}'
    assert after[key] == before.get(key, 0) + 1
    batches = 'videomae_batch_clips_count{kind="classify"}'
    assert after[batches] == before[batches] + 1
    assert after['videomae_batch_clips_sum{kind="classify"}'] - before['videomae_batch_clips_sum{kind="classify"}'] == 2
    assert after["videomae_queue_depth"] == 0 and after["videomae_queue_limit"] == 64


def test_nothing_uploaded_is_kept(server, files) -> None:  # noqa: ANN001
    for _ in range(2):
        assert server.upload("/v1/classify", files["clip"]).status == 200
        assert server.upload("/v1/classify", files["broken"]).status == 422
        assert server.multipart("/v1/embed", files["clip"]).status == 200
    [uploads] = list(files["tmp"].glob("videomae-serve-*"))
    assert list(uploads.iterdir()) == []


def test_a_token_is_required_when_set(files) -> None:  # noqa: ANN001
    with running_server(files["pretraining"], "--token", TOKEN) as server:
        assert server.request("GET", "/v1/model").status == 401
        assert server.request("GET", "/metrics").status == 401
        wrong = server.upload("/v1/embed", files["clip"], headers={"Authorization": "Bearer nope"})
        assert wrong.status == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert server.request("GET", "/healthz").json()["token_required"] is True  # open, for health checks
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert server.request("GET", "/v1/model", headers=auth).json()["tasks"] == ["embed", "reconstruct"]
        gif = server.upload("/v1/reconstruct?mask_ratio=0.75", files["clip"], headers=auth)
        assert gif.status == 200 and gif.headers["content-type"] == "image/gif" and gif.body[:6] == b"GIF89a"
        mp4 = server.upload("/v1/reconstruct?format=mp4", files["clip"], headers=auth)
        assert mp4.status == 200 and mp4.body[4:8] == b"ftyp"


def test_binding_beyond_loopback_needs_a_token(files) -> None:  # noqa: ANN001
    env = {k: v for k, v in os.environ.items() if k != "VIDEOMAE_SERVE_TOKEN"}
    done = subprocess.run(serve_command(files["classifier"], "--host", "0.0.0.0"), capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 1
    assert "a bearer token is required" in done.stderr and "--token" in done.stderr


def test_a_full_queue_answers_503_and_a_slow_request_504(files, tmp_path) -> None:  # noqa: ANN001
    """Queue of 1, model worker held: request 1 is on the model, request 2 waits, request 3 is
    refused at once. With a 4 s limit, 1 and 2 then time out; released, the service answers."""
    hold = tmp_path / "hold"
    hold.touch()
    with running_server(files["classifier"], "--max-queue", "1", "--timeout", "4",
                        env={"VIDEOMAE_SERVE_HOLD": str(hold)}) as server:
        answers: dict[int, int] = {}

        def send(i: int) -> None:
            answers[i] = server.upload("/v1/classify", files["clip"]).status

        first = threading.Thread(target=send, args=(1,))
        first.start()
        server.wait_for(lambda m: m["videomae_model_busy"] == 1 and m["videomae_queue_depth"] == 0)
        second = threading.Thread(target=send, args=(2,))
        second.start()
        server.wait_for(lambda m: m["videomae_queue_depth"] == 1)
        third = server.upload("/v1/classify", files["clip"])
        assert third.status == 503 and "full" in third.json()["error"]
        first.join(30)
        second.join(30)
        assert answers == {1: 504, 2: 504}
        hold.unlink()
        assert server.upload("/v1/classify", files["clip"]).status == 200
        metrics = server.wait_for(lambda m: m["videomae_queue_depth"] == 0)
        assert metrics['videomae_requests_total{endpoint="/v1/classify",status="503"}'] == 1
        assert metrics['videomae_requests_total{endpoint="/v1/classify",status="504"}'] == 2
