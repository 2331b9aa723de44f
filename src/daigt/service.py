"""HTTP scoring service: POST essays, get scores, probabilities, in_domain and decisions with their reasons
(and, where the ensemble has the second task, generator and generator_probability) from the ensemble loaded
once (the fields of src/predict.py's output).

Limits (essays per request, characters per essay, request bytes) come from configs/serve.yaml and fail
with a 4xx and a message saying which limit and by how much, before any model work is done.
"""

from __future__ import annotations

import errno
import signal
import socket
import threading
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import pandas as pd
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from daigt.config import DEFAULT_ENSEMBLE
from daigt.data import blank_texts, derive_ids
from daigt.errors import DaigtError
from daigt.inference import GENERATOR_COLUMNS, EnsemblePredictor
from daigt.schema import Invalid
from essayio.errors import Terminated

CONTENT_TYPE = "content-type: application/json"
SHAPE = 'send {"essays": [{"id": "a", "text": "..."}]}'


class Essay(BaseModel):
    text: str
    id: str | None = None


class ScoreRequest(BaseModel):
    essays: list[Essay]


@dataclass
class ServeLimits:
    max_essays: int = 64  # per request: more -> 422
    max_chars: int = 100_000  # per essay: longer -> 422
    max_body_bytes: int = 8_000_000  # whole request: bigger -> 413, refused before it is parsed

    def check(self) -> None:
        for key in ("max_essays", "max_chars", "max_body_bytes"):
            if getattr(self, key) < 1:
                raise Invalid(f"must be >= 1, got {getattr(self, key)}", key)


MAX_PORT = 65535


@dataclass
class ServeConfig:
    """configs/serve.yaml."""

    host: str = "127.0.0.1"  # the address to listen on (127.0.0.1: this machine only)
    port: int = 8000  # the TCP port
    ensemble: str = DEFAULT_ENSEMBLE  # the folder blend writes for the detector profile (make detector)
    # what one request may send (4xx beyond, before any model work)
    limits: ServeLimits = field(default_factory=ServeLimits)

    def check(self) -> None:
        if not 1 <= self.port <= MAX_PORT:
            raise Invalid(f"must lie in 1..{MAX_PORT}, got {self.port}", "port")


class BodyLimit:
    """ASGI middleware: read the request body up to ``limit`` bytes and answer 413 past it, whether or not the
    client declared a Content-Length (a chunked upload is counted as it arrives, never buffered past the limit)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"0")
        if int(declared or 0) > self.limit:
            await self._refuse(send, f"request body is {int(declared)} bytes")
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.limit:
                await self._refuse(send, f"request body is over {size} bytes so far")
                return
        body, replayed = b"".join(chunks), False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Any, what: str) -> None:
        response = JSONResponse(status_code=413, content={"detail": f"{what}; the limit is {self.limit}"})
        await response({"type": "http"}, None, send)


def _json_value(value: Any) -> str | float | None:
    """A string as it is, a number as a float, NaN (no value: a text not decided ai has no family) as null."""
    return value if isinstance(value, str) else (None if pd.isna(value) else float(value))


def create_app(predictor: EnsemblePredictor, limits: ServeLimits) -> FastAPI:
    # long: the routes are closures over one predictor, its lock and the limits
    app = FastAPI(title="DAIGT ensemble", description="Probability that an essay was written by an LLM.")
    lock = threading.Lock()  # fold models are not guaranteed thread-safe; requests are scored one at a time

    app.add_middleware(BodyLimit, limit=limits.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        """One short line, never the body echoed back (it may be a whole essay, or not text at all)."""
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        if kind != "application/json":
            return JSONResponse(
                status_code=415, content={"detail": f"send JSON ({CONTENT_TYPE}), not {kind or 'no content type'}"}
            )
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "the body"
        return JSONResponse(status_code=422, content={"detail": f"{where}: {first.get('msg', 'invalid')}; {SHAPE}"})

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "picked": predictor.picked, "models": list(predictor.fold_models)}

    @app.post("/predict")
    def predict(request: ScoreRequest) -> dict[str, Any]:
        essays = request.essays
        if not essays:
            raise HTTPException(422, 'send at least one essay: {"essays": [{"text": "..."}]}')
        if len(essays) > limits.max_essays:
            raise HTTPException(422, f"{len(essays)} essays in one request; the limit is {limits.max_essays}")
        for i, essay in enumerate(essays):
            try:
                essay.text.encode("utf-8")
            except UnicodeEncodeError as err:
                raise HTTPException(
                    422, f"essays[{i}].text: character {err.start} is a lone surrogate, not text; send valid UTF-8"
                ) from None
            if blank_texts(pd.Series([essay.text], dtype=object))[0]:
                raise HTTPException(422, f"essays[{i}].text is empty (or only invisible characters)")
            if len(essay.text) > limits.max_chars:
                raise HTTPException(
                    422, f"essays[{i}].text has {len(essay.text)} characters; the limit is {limits.max_chars}"
                )
        given = [e.id for e in essays if e.id is not None]
        repeated = next((i for i in given if given.count(i) > 1), None)
        if repeated is not None:
            raise HTTPException(422, f"id '{repeated}' is used twice in one request; give every essay its own id")
        texts = pd.Series([e.text for e in essays])
        ids = [e.id if e.id is not None else derived for e, derived in zip(essays, derive_ids(texts), strict=True)]
        with lock:
            scored = predictor.score(pd.DataFrame({"id": ids, "text": texts}))
        return {
            "picked": predictor.picked,
            "thresholds": predictor.thresholds.to_dict(),
            "predictions": [
                {
                    "id": str(row.id),
                    "score": float(row.score),
                    "probability": float(row.probability),
                    "in_domain": float(row.in_domain),
                    "decision": str(row.decision),
                    "reason": str(row.reason),
                    # the second task, when the ensemble has it: a family or unknown, and the top family's probability
                    **{c: _json_value(getattr(row, c)) for c in GENERATOR_COLUMNS if c in scored.columns},
                }
                for row in scored.itertuples(index=False)
            ],
        }

    return app


def listening_socket(host: str, port: int) -> socket.socket:
    """The service's socket, bound before the server starts, so a busy port or an address this machine does not
    have is one line (uvicorn would log a multi-line error and exit 3)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as err:
        raise DaigtError(f"--host {host}: not an address of this machine ({err.strerror or err})") from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        busy = " (another program listens there: pick another --port)" if err.errno == errno.EADDRINUSE else ""
        raise DaigtError(f"--host {host} --port {port}: cannot listen there: {err.strerror}{busy}") from None
    return sock


def run_service(app: FastAPI, host: str, port: int) -> None:
    """Serve ``app`` until Ctrl-C or SIGTERM, which end as for every entry point (one line, 130 / 143)."""
    import uvicorn

    class Server(uvicorn.Server):
        stopped_by: int | None = None

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            self.stopped_by = sig
            super().handle_exit(sig, frame)

    sock = listening_socket(host, port)
    server = Server(uvicorn.Config(app, host=host, port=port))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    # uvicorn re-raises the signal after its shutdown, but an ignored SIGINT (a background job) stays ignored
    if server.stopped_by == signal.SIGINT:
        raise KeyboardInterrupt
    if server.stopped_by == signal.SIGTERM:
        raise Terminated
