"""The HTTP face of the service, on FastAPI: routes, authentication, uploads, errors.

    POST /v1/classify      a video (raw body or multipart field) or JSON {"path": ...}
    POST /v1/embed         the same in; feature vectors out
    POST /v1/reconstruct   the same in; a GIF, MP4 or PNG of original | masked | reconstruction
    GET  /v1/model         config, labels, preprocessing
    GET  /healthz          liveness, no token needed
    GET  /metrics          Prometheus text format
    GET  /                 the web page (plain HTML and JavaScript, no build step)

One request's life: authenticate; take an admission place (503 when the queue is full);
read the upload into a temporary file, counting bytes (413 past the limit); decode in a
thread (415 / 422); hand the clips to the batching worker; answer; delete the file. A
per-request time limit covers all of it (504).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import shutil
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.formparsers import MultiPartException, MultiPartParser

from .. import __version__
from .batching import Admission, Batcher, Busy, Job
from .metrics import CONTENT_TYPE, LATENCY_BUCKETS, SIZE_BUCKETS, Counter, Gauge, Histogram, Registry
from .options import ServeOptions
from .service import (
    LoadedModel,
    ReconstructRequest,
    Runner,
    ServeError,
    decode,
    describe,
    frames_png,
    load_model,
    reconstruction_file,
    resolve_under,
)

logger = logging.getLogger(__name__)

_JSON_LIMIT = 64 * 1024  # a JSON request names a path; it has no reason to be large
_MEDIA_TYPES = {"gif": "image/gif", "mp4": "video/mp4", "png": "image/png"}
_ENDPOINTS = ("/", "/healthz", "/metrics", "/v1/model", "/v1/classify", "/v1/embed", "/v1/reconstruct")


class Service:
    """Everything the routes share: the model, the admission count, the batching worker, the
    decoding threads, the metrics and the folder uploads pass through."""

    def __init__(self, options: ServeOptions, model: LoadedModel) -> None:
        self.options = options
        self.model = model
        self.admission = Admission(options.max_queue)
        self.metrics = Registry()
        self.requests = self.metrics.add(Counter("videomae_requests_total", "HTTP requests by endpoint and status"))
        self.latency = self.metrics.add(Histogram("videomae_request_seconds", "time from request to answer",
                                                  LATENCY_BUCKETS))
        self.batch_requests = self.metrics.add(Histogram("videomae_batch_requests", "requests per model batch",
                                                         SIZE_BUCKETS))
        self.batch_clips = self.metrics.add(Histogram("videomae_batch_clips", "clips per model batch", SIZE_BUCKETS))
        self.batch_seconds = self.metrics.add(Histogram("videomae_batch_seconds", "model time per batch",
                                                        LATENCY_BUCKETS))
        self.metrics.add(Gauge("videomae_queue_depth", "requests admitted and not yet on the model (receiving, "
                               "decoding or waiting for a batch)", lambda: self.admission.count))
        self.metrics.add(Gauge("videomae_queue_limit", "the admission limit (--max-queue)", lambda: options.max_queue))
        self.metrics.add(Gauge("videomae_model_busy", "1 while a batch is on the model",
                               lambda: int(self.batcher.busy)))
        self.batcher = Batcher(Runner(model, options.batch_size), max_clips=options.batch_size,
                               wait_s=options.wait_ms / 1000, admission=self.admission, on_batch=self._on_batch,
                               hold_file=options.hold_file)
        self.pool = ThreadPoolExecutor(options.decode_workers, thread_name_prefix="videomae-decode")
        self.uploads = Path(tempfile.mkdtemp(prefix="videomae-serve-"))

    def _on_batch(self, kind: str, requests: int, clips: int, seconds: float) -> None:
        self.batch_requests.observe(requests, kind=kind)
        self.batch_clips.observe(clips, kind=kind)
        self.batch_seconds.observe(seconds, kind=kind)

    def start(self) -> None:
        self.batcher.start()

    def stop(self) -> None:
        self.batcher.stop()
        self.pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.uploads, ignore_errors=True)

    # ------------------------------------------------------------------ one request
    async def handle(self, request: Request, kind: str, num_clips: int, answer,  # noqa: ANN001
                     mask: tuple[float, int] = (0.9, 0)) -> Response:
        """Admit, receive, decode, queue, then `answer(decoded, result, timings, in_thread,
        start)`; whatever happens, the upload is deleted and the admission place given back.
        `mask`: (ratio, seed) of a reconstruction."""
        if kind not in self.model.tasks:
            raise ServeError(409, f"{self.model.name} cannot {kind} (a {type(self.model.net).__name__}; it can: "
                                  f"{', '.join(self.model.tasks)})")
        try:
            ticket = self.admission.enter()
        except Busy as err:
            raise ServeError(503, str(err)) from None
        start = time.perf_counter()
        upload: list[Path] = []  # the temporary file, once there is one
        running: list[Future] = []  # work in threads that may outlive a timed-out request

        def in_thread(fn, *args):  # noqa: ANN001,ANN202
            future = self.pool.submit(fn, *args)
            running.append(future)
            return asyncio.wrap_future(future)

        async def work() -> Response:
            source, name = await self.receive(request, upload)
            received = time.perf_counter()
            decoded = await in_thread(decode, source, self.model, num_clips, name)
            decoded_at = time.perf_counter()
            payload = decoded.clips if kind != "reconstruct" else ReconstructRequest(decoded.clips[:1], *mask)
            job = Job(kind, payload, decoded.clips.shape[0] if kind != "reconstruct" else 1, ticket)
            result = await asyncio.wrap_future(self.batcher.submit(job))
            done = time.perf_counter()
            timings = {"receive": received - start, "decode": decoded_at - received,
                       "queue": job.started - job.submitted, "model": done - job.started}
            return await answer(decoded, result, timings, in_thread, start)

        try:
            return await asyncio.wait_for(work(), self.options.timeout_s)
        except asyncio.TimeoutError:
            raise ServeError(504, f"the request took longer than the {self.options.timeout_s:g} s limit") from None
        except Busy as err:
            raise ServeError(503, str(err)) from None
        finally:
            self._clean_up(ticket, upload, running)

    def _clean_up(self, ticket, upload: list[Path], running: list[Future]) -> None:  # noqa: ANN001
        def finish(_: object = None) -> None:
            for path in upload:
                path.unlink(missing_ok=True)
            ticket.release()

        pending = [f for f in running if not f.done() and not f.cancel()]
        if not pending:
            finish()
            return
        remaining = [len(pending)]  # the place is kept until the last thread is done with the file

        def one_done(_: Future) -> None:
            remaining[0] -= 1
            if remaining[0] == 0:
                finish()

        for future in pending:
            future.add_done_callback(one_done)

    async def receive(self, request: Request, upload: list[Path]) -> tuple[Path, str]:
        """The video the request names: a path under --data-root (JSON), or the upload (a
        multipart file field, else the raw body) written to a temporary file."""
        limit = self.options.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ServeError(413, f"the upload is {int(declared):,} bytes, over the limit of {limit:,} bytes")
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media == "application/json":
            body = b"".join([chunk async for chunk in _limited(request, _JSON_LIMIT)])
            try:
                document = json.loads(body)
            except (ValueError, UnicodeDecodeError) as err:
                raise ServeError(400, f"the JSON body does not parse: {err}") from None
            if not isinstance(document, dict) or "path" not in document:
                raise ServeError(400, 'a JSON request names a video: {"path": "relative/to/data-root.mp4"}')
            return resolve_under(self.options.data_root, document["path"]), str(document["path"])
        path = self.uploads / f"upload-{time.monotonic_ns()}-{id(request)}"
        upload.append(path)
        if media == "multipart/form-data":
            name = await self._save_multipart(request, path, limit)
        else:
            with path.open("wb") as out:
                async for chunk in _limited(request, limit):
                    out.write(chunk)
            name = unquote(request.headers.get("x-filename", "upload"))
        if path.stat().st_size == 0:
            raise ServeError(400, "the request carries no video (an empty body)")
        return path, name

    async def _save_multipart(self, request: Request, path: Path, limit: int) -> str:
        parser = MultiPartParser(request.headers, _limited(request, limit), max_files=1, max_fields=16)
        try:
            form = await parser.parse()
        except MultiPartException as err:
            raise ServeError(400, f"the multipart body does not parse: {err.message}") from None
        try:
            files = [value for _, value in form.multi_items() if not isinstance(value, str)]
            if not files:
                raise ServeError(400, "the multipart body has no file field (send the video as 'file')")
            upload = files[0]
            await upload.seek(0)
            with path.open("wb") as out:
                shutil.copyfileobj(upload.file, out, 1 << 20)
            return upload.filename or "upload"
        finally:
            await form.close()


async def _limited(request: Request, limit: int):  # noqa: ANN202
    """The request body in chunks; a 413 as soon as it passes `limit` bytes (a client may send
    no Content-Length, or a false one)."""
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise ServeError(413, f"the upload is larger than the limit of {limit:,} bytes")
        yield chunk


def _error(status: int, reason: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": reason, "status": status}, status_code=status, headers=headers)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def create_app(options: ServeOptions, model: LoadedModel | None = None) -> FastAPI:
    """The application, with its model loaded (or the one given) and its worker started on
    startup; `uvicorn.run(create_app(...))` or `videomae.serve.run` serves it."""
    options.check()
    model = model or load_model(options.model, options.device, options.dtype, options.offline)
    service = Service(options, model)
    page = resources.files(__package__).joinpath("static/index.html").read_text(encoding="utf-8")

    @asynccontextmanager
    async def lifespan(_: FastAPI):  # noqa: ANN202
        service.start()
        try:
            yield
        finally:
            service.stop()

    app = FastAPI(title="videomae serve", version=__version__, lifespan=lifespan, docs_url="/docs",
                  redoc_url=None)
    app.state.service = service

    @app.exception_handler(ServeError)
    async def serve_error(_: Request, err: ServeError) -> JSONResponse:
        return _error(err.status, err.reason)

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(_: Request, err: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in err.errors())
        return _error(400, f"bad parameters: {problems}")

    @app.middleware("http")
    async def account(request: Request, call_next):  # noqa: ANN001,ANN202
        start = time.perf_counter()
        path = request.url.path
        if options.token and (path.startswith("/v1/") or path == "/metrics"):
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {options.token}".encode()):
                response: Response = _error(401, "a bearer token is required: 'Authorization: Bearer TOKEN'")
            else:
                response = await call_next(request)
        else:
            response = await call_next(request)
        endpoint = path if path in _ENDPOINTS else "other"
        elapsed = time.perf_counter() - start
        service.requests.inc(endpoint=endpoint, status=str(response.status_code))
        service.latency.observe(elapsed, endpoint=endpoint)
        response.headers["X-Time-Ms"] = f"{_ms(elapsed)}"
        return response

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "model": model.name, "tasks": list(model.tasks), "token_required": bool(options.token),
                "queue_depth": service.admission.count}

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/v1/model")
    async def model_info() -> dict[str, Any]:
        info = describe(model, options.num_clips)
        info["limits"] = {"max_upload_bytes": options.max_upload_bytes, "timeout_s": options.timeout_s,
                          "max_queue": options.max_queue, "batch_size": options.batch_size,
                          "wait_ms": options.wait_ms}
        return info

    def common(decoded, timings: dict[str, float], start: float, frames: bool) -> dict[str, Any]:  # noqa: ANN001
        out: dict[str, Any] = {
            "model": model.name,
            "clips": [{"start": a, "end": b} for a, b in decoded.times],
            "video": {"frames": decoded.num_frames, "fps": round(decoded.fps, 3), "width": decoded.width,
                      "height": decoded.height},
            "time_ms": {"total": _ms(time.perf_counter() - start), **{k: _ms(v) for k, v in timings.items()}},
        }
        if frames:
            out["frames_png"] = frames_png(decoded.clips)
        return out

    num_clips_query = Query(None, ge=1, le=64, description="clips per video, evenly spaced (default: --num-clips)")

    @app.post("/v1/classify")
    async def classify(request: Request, top_k: int = Query(5, ge=1, le=1000), num_clips: int | None = num_clips_query,
                       frames: bool = Query(False, description="include the frames the model saw, as a PNG")
                       ) -> Response:
        async def answer(decoded, scores, timings, _, start):  # noqa: ANN001,ANN202
            mean = scores.mean(dim=0)
            values, ids = mean.topk(min(top_k, mean.shape[0]))
            body = {"top_k": [{"label": model.id2label.get(int(i), str(int(i))), "id": int(i),
                               "score": round(float(v), 6)} for v, i in zip(values, ids)],
                    **common(decoded, timings, start, frames)}
            return JSONResponse(body)

        return await service.handle(request, "classify", num_clips or options.num_clips, answer)

    @app.post("/v1/embed")
    async def embed(request: Request, num_clips: int | None = num_clips_query, per_clip: bool = Query(False),
                    frames: bool = Query(False)) -> Response:
        async def answer(decoded, features, timings, _, start):  # noqa: ANN001,ANN202
            body = {"dim": int(features.shape[1]), "features": [round(float(x), 6) for x in features.mean(dim=0)],
                    **common(decoded, timings, start, frames)}
            if per_clip:
                body["clip_features"] = [[round(float(x), 6) for x in row] for row in features]
            return JSONResponse(body)

        return await service.handle(request, "embed", num_clips or options.num_clips, answer)

    @app.post("/v1/reconstruct")
    async def reconstruct(request: Request, format: str = Query("gif", pattern="^(gif|mp4|png)$"),  # noqa: A002
                          mask_ratio: float = Query(0.9, gt=0, lt=1), seed: int = Query(0, ge=0),
                          fps: float = Query(4.0, gt=0, le=60)) -> Response:
        async def answer(decoded, rec, timings, in_thread, start):  # noqa: ANN001,ANN202
            data = await in_thread(reconstruction_file, rec, format, service.uploads, fps)
            headers = {"X-Clip-Start": str(decoded.times[0][0]), "X-Clip-End": str(decoded.times[0][1]),
                       "X-Model": model.name, "X-Mask-Ratio": str(mask_ratio),
                       "X-Time-Total-Ms": str(_ms(time.perf_counter() - start))}
            return Response(data, media_type=_MEDIA_TYPES[format], headers=headers)

        return await service.handle(request, "reconstruct", 1, answer, mask=(mask_ratio, seed))

    return app


__all__ = ["create_app", "Service"]
