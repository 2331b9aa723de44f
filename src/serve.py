"""Serve the saved ensemble over HTTP (loads it once): POST /predict, GET /health, docs at /docs.

python src/serve.py                       # 127.0.0.1:8000, ensemble/ (configs/serve.yaml)
curl -s localhost:8000/predict -H 'content-type: application/json' \
     -d '{"essays": [{"id": "a", "text": "Cars are bad becuase ..."}]}'
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: augment/
sys.path.insert(0, str(Path(__file__).resolve().parent))  # src/: the daigt package

from daigt.config import CONFIG_DIR, load_yaml, repo_path
from daigt.errors import cli_entry
from daigt.inference import EnsemblePredictor

SERVE_CONFIG = CONFIG_DIR / "serve.yaml"


@cli_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(SERVE_CONFIG))
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--ensemble", help="saved ensemble folder (default: 'ensemble:' in the serve config)")
    parser.add_argument("--artifacts", help="fold models, if moved since the blend")
    args = parser.parse_args(argv)
    cfg = load_yaml(args.config)
    predictor = EnsemblePredictor.load(args.ensemble or repo_path(cfg.get("ensemble", "ensemble")), args.artifacts)

    import uvicorn

    from daigt.service import create_app

    app = create_app(predictor, cfg["limits"])
    uvicorn.run(app, host=args.host or cfg.get("host", "127.0.0.1"), port=args.port or cfg.get("port", 8000))


if __name__ == "__main__":
    main()
