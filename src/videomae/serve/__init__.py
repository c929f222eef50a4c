"""`videomae serve`: a model behind HTTP, with a web page (the `videomae[serve]` extra).

    from videomae.serve import ServeOptions, create_app, bind, run
    app = create_app(ServeOptions(model="runs/ft/model"))
    sock = bind("127.0.0.1", 8000)
    run(app, sock)

Importing this package needs nothing beyond the library; FastAPI and uvicorn are imported
when an app is made or run, and `missing_dependencies()` names what is not installed.
Modules: `options` (settings), `batching` (admission limit, batching worker), `service`
(model, decoding, batches; no HTTP), `metrics` (Prometheus text), `app` (FastAPI routes),
`static/index.html` (the page).
"""

from __future__ import annotations

import importlib.util
import socket
from typing import TYPE_CHECKING

from .options import HOLD_ENV, LOOPBACK, TOKEN_ENV, ServeOptions

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .service import LoadedModel

REQUIRED = ("fastapi", "uvicorn", "python_multipart")  # modules; python-multipart is the package


def missing_dependencies() -> list[str]:
    """The serve extra's modules that are not installed ([] when it can run)."""
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def create_app(options: ServeOptions, model: LoadedModel | None = None) -> FastAPI:
    """The FastAPI application serving `options.model` (see `videomae.serve.app`)."""
    missing = missing_dependencies()
    if missing:
        raise ImportError(f"videomae serve needs {', '.join(missing)}: pip install 'videomae[serve]'")
    from .app import create_app as make

    return make(options, model)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: one the system picks; read it from `getsockname()`)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port} ({err.strerror or err})") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run(app: FastAPI, sock: socket.socket, max_connections: int | None = None) -> None:
    """Serve `app` on `sock` until SIGINT or SIGTERM; then finish the requests in flight (up
    to 10 s) and stop the worker."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=10,
                            limit_concurrency=max_connections, server_header=False)
    uvicorn.Server(config).run(sockets=[sock])


__all__ = ["ServeOptions", "create_app", "bind", "run", "missing_dependencies", "TOKEN_ENV", "HOLD_ENV", "LOOPBACK"]
