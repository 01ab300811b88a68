"""`chainrule playground`: a local web page that trains chainrule networks live (TensorFlow Playground)."""
from __future__ import annotations

import sys


def register(sub):
    p = sub.add_parser(
        "playground", help="train networks live in the browser (needs chainrule[playground])",
        description="Start a local web server with the playground: 2-D data sets, the network, its decision "
                    "boundary and every unit's output, trained by chainrule as you watch. Each browser tab has "
                    "its own model. Press Ctrl-C to stop.")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to bind (default 127.0.0.1, this machine only; 0.0.0.0 serves the network)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.set_defaults(func=run)


def run(args):
    from chainrule.cli import UsageError

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be in 0..65535, got {args.port}")
    try:
        import uvicorn

        from chainrule.playground.server import create_app
    except ImportError as err:
        raise UsageError(f"the playground needs {err.name}: pip install \"chainrule[playground]\"") from None
    import socket

    # Bind the socket here so that a busy port is a clear error and port 0 gives a real URL.
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as err:
        sock.close()
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {err.strerror or err}") from None
    port = sock.getsockname()[1]
    if args.host in ("0.0.0.0", "::", ""):
        print(f"warning: listening on all interfaces ({args.host}): anyone who can reach this machine can "
              "use the playground", file=sys.stderr)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "") else ("[::1]" if args.host == "::" else args.host)
    url = f"http://{shown}:{port}/"
    print(f"chainrule playground: {url}  (Ctrl-C to stop)", flush=True)
    if not args.no_browser:
        import webbrowser

        webbrowser.open(url)
    config = uvicorn.Config(create_app(), log_level="warning", ws_max_size=2**20)
    uvicorn.Server(config).run(sockets=[sock])
    return 0
