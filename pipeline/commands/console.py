"""``pipeline console``: the operator console (see ``pipeline/console.py``)."""

from __future__ import annotations

import sys
import threading


def cmd_console(args) -> int:
    from pipeline.cli import _setup_logging
    from pipeline.config import load
    from pipeline.console import Console, make_server, read_token, serve_forever
    from pipeline.errors import PipelineError
    from pipeline.runner import install_signal_handlers

    settings = load(args.config)
    _setup_logging(settings, args.verbose)
    try:
        token_file = args.token_file or (settings.resolve(settings.observe.console_token_file)
                                         if settings.observe.console_token_file else None)
        token = read_token(token_file)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        server = make_server(Console(settings, token=token), args.host, args.port)
    except OSError as exc:
        print(f"error: console: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    host, port = server.server_address[:2]
    mode = "actions need the token" if token else "read-only (no token)"
    stop = threading.Event()
    install_signal_handlers(stop)
    serve_forever(server, stop, on_ready=lambda: print(f"console: http://{host}:{port}/ ({mode})", flush=True))
    return 0


def register(sub) -> None:
    from pipeline.cli import DEFAULT_CONFIG

    p = sub.add_parser("console", help="serve the operator console (a small web UI) on 127.0.0.1")
    p.add_argument("--config", "-c", default=DEFAULT_CONFIG)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8700, help="default 8700; 0 picks a free port (printed)")
    p.add_argument("--token-file", help="file holding the token that enables actions (or PIPELINE_CONSOLE_TOKEN); "
                                        "without one the console is read-only")
    p.add_argument("--verbose", "-v", action="store_true")
    p.set_defaults(func=cmd_console)
