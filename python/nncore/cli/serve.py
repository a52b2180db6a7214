"""`nncore serve`: a saved model answering predictions over HTTP (see nncore.serve)."""

from __future__ import annotations

import argparse

from ._arguments import HelpFormatter, positive_float, positive_int


def add_parser(subparsers) -> None:
    sv = subparsers.add_parser(
        "serve", help="serve a saved model over HTTP (POST /predict, GET /model, GET /health)",
        formatter_class=HelpFormatter,
        description="Serve a model saved by `nncore train --save` or estimator.save() over HTTP "
                    "until Ctrl-C or SIGTERM (needs pip install 'nncore[serve]'). POST /predict "
                    'takes {"rows": [...]}: records of raw columns, or a numeric matrix for a '
                    "model without preprocessing.")
    sv.add_argument("model", metavar="MODEL.npz")
    sv.add_argument("--host", default="127.0.0.1",
                    help="address to listen on (0.0.0.0: every interface)")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--workers", type=positive_int, default=1,
                    help="processes, each with its own copy of the model")
    sv.add_argument("--max-rows", type=positive_int, default=10_000,
                    help="most rows one request may hold (413 above)")
    sv.add_argument("--max-body-mb", type=positive_float, default=16.0,
                    help="largest request body in MiB (413 above)")
    sv.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True,
                    help="one log line per request")


def run(args) -> int:
    from .. import serve

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in 0..65535, got {args.port}")
    serve.run(args.model, host=args.host, port=args.port, workers=args.workers,
              max_rows=args.max_rows, max_body_mb=args.max_body_mb, access_log=args.access_log)
    return 0
