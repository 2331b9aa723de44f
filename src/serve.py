"""Serve the saved ensemble over HTTP (loads it once): POST /predict, GET /health, docs at /docs.

python src/serve.py                       # 127.0.0.1:8000, ensemble/ (configs/serve.yaml)
curl -s localhost:8000/predict -H 'content-type: application/json' \
     -d '{"essays": [{"id": "a", "text": "Cars are bad becuase ..."}]}'
"""

from __future__ import annotations

import _venv  # noqa: F401  (first: outside the project's venv, one line or a re-run under it)

# isort: split
import argparse

from daigt.cli_options import add_set_option, parse_options
from daigt.config import SERVE_CONFIG, load_config, repo_path
from daigt.errors import DaigtError, cli_entry
from daigt.inference import EnsemblePredictor
from daigt.service import MAX_PORT, ServeConfig, create_app, run_service


@cli_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve-config", default=str(SERVE_CONFIG), help="serve config (configs/serve.yaml)")
    parser.add_argument("--config", help=argparse.SUPPRESS)  # the project config elsewhere: said, not guessed
    parser.add_argument("--host", help="address to listen on (default: 'host:' in the serve config)")
    parser.add_argument("--port", type=int, help="port, 1-65535 (default: 'port:' in the serve config)")
    parser.add_argument("--ensemble", help="saved ensemble folder (default: 'ensemble:' in the serve config)")
    parser.add_argument("--artifacts", help="fold models, if moved since the blend")
    add_set_option(parser, "serve config")
    args = parse_options(parser, argv)
    if args.config is not None:
        raise DaigtError(f"--config {args.config}: serve's own config is --serve-config (--config names the project "
                         "config of the other commands)")  # fmt: skip
    if args.port is not None and not 1 <= args.port <= MAX_PORT:
        raise DaigtError(f"--port {args.port}: give a port from 1 to {MAX_PORT}")
    cfg = load_config(ServeConfig, args.serve_config, args.set)
    predictor = EnsemblePredictor.load(args.ensemble or repo_path(cfg.ensemble), args.artifacts)
    run_service(create_app(predictor, cfg.limits), args.host or cfg.host, args.port or cfg.port)


if __name__ == "__main__":
    main()
