"""`serve`: parse the flags, start `videomae.serve`, say where it listens.

    videomae serve --model runs/ft/model [--host 127.0.0.1 --port 8000 --data-root videos/]

The service (routes, batching, limits, the page) lives in the library: `videomae.serve`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def add_arguments(parser) -> None:  # noqa: ANN001
    from ..serve.options import HOLD_ENV, LOOPBACK, TOKEN_ENV, ServeOptions
    from .inference import _positive

    defaults = ServeOptions(model="")
    parser.add_argument("--model", required=True, metavar="PATH_OR_ID",
                        help="model folder (config.json + weights), hub repo id, or original .pth checkpoint; a "
                             "classifier serves classify and embed, a pretraining checkpoint embed and reconstruct")
    parser.add_argument("--host", default=LOOPBACK,
                        help=f"address to listen on (default: {LOOPBACK}); any other needs a token")
    parser.add_argument("--port", type=int, default=defaults.port, help="port; 0 picks a free one (default: 8000)")
    parser.add_argument("--token", default=None,
                        help=f"bearer token clients must send (default: ${TOKEN_ENV}); required unless the host is "
                             f"{LOOPBACK}")
    parser.add_argument("--data-root", type=Path, default=None, metavar="DIR",
                        help='folder whose videos JSON requests may name ({"path": "a/b.mp4"}); without it, uploads '
                             "only")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    parser.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"),
                        help="compute precision (default: auto = bfloat16 on CUDA and on CPUs with bf16 matrix "
                             "units, AMX or AVX512-BF16; float32 on other CPUs)")
    parser.add_argument("--offline", action="store_true", help="never reach the Hugging Face hub")
    parser.add_argument("--batch-size", type=_positive, default=defaults.batch_size, metavar="N",
                        help=f"most clips per model batch, from any number of requests "
                             f"(default: {defaults.batch_size})")
    parser.add_argument("--wait-ms", type=float, default=defaults.wait_ms, metavar="MS",
                        help=f"how long a batch waits for more requests (default: {defaults.wait_ms:g})")
    parser.add_argument("--max-queue", type=_positive, default=defaults.max_queue, metavar="N",
                        help=f"requests admitted and not yet on the model; beyond, 503 (default: {defaults.max_queue})")
    parser.add_argument("--max-upload-mb", type=float, default=defaults.max_upload_mb, metavar="MB",
                        help=f"upload size limit; beyond, 413 (default: {defaults.max_upload_mb:g})")
    parser.add_argument("--timeout", type=float, default=defaults.timeout_s, metavar="S",
                        help=f"per-request time limit, upload to answer; beyond, 504 (default: {defaults.timeout_s:g})")
    parser.add_argument("--num-clips", type=_positive, default=defaults.num_clips, metavar="N",
                        help=f"clips per video when a request does not say (default: {defaults.num_clips})")
    parser.add_argument("--decode-workers", type=_positive, default=defaults.decode_workers, metavar="N",
                        help=f"threads decoding videos (default: {defaults.decode_workers})")
    parser.set_defaults(hold_env=HOLD_ENV, token_env=TOKEN_ENV)


def run(args) -> int:  # noqa: ANN001
    from .. import serve
    from ..devices import describe_dtype

    missing = serve.missing_dependencies()
    if missing:
        raise RuntimeError(f"needs {', '.join(missing)}: pip install 'videomae[serve]'")
    options = serve.ServeOptions(
        model=args.model, host=args.host, port=args.port, token=args.token or os.environ.get(args.token_env) or None,
        data_root=args.data_root, device=args.device, dtype=args.dtype, offline=args.offline,
        batch_size=args.batch_size, wait_ms=args.wait_ms, max_queue=args.max_queue, max_upload_mb=args.max_upload_mb,
        timeout_s=args.timeout, num_clips=args.num_clips, decode_workers=args.decode_workers,
        hold_file=os.environ.get(args.hold_env) or None)
    options.check()  # before the model loads: a refused setting costs no time
    app = serve.create_app(options)
    sock = serve.bind(options.host, options.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    model = app.state.service.model
    print(f"videomae serve: {describe_dtype(options.dtype, model.device)}", file=sys.stderr, flush=True)
    print(f"videomae serve: {model.name} ({', '.join(model.tasks)}) on http://{shown}:{port}/"
          f"{' (token required)' if options.token else ''}", file=sys.stderr, flush=True)
    serve.run(app, sock, max_connections=options.max_queue * 4 + 64)
    return 0


__all__ = ["add_arguments", "run"]
