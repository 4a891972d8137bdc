"""One replica: one owner's model behind HTTP, as a suanli job pinned to that owner's node.

    python -m suanli.serve.replica        (SUANLI_SERVE_SPEC, the resolved spec, and SUANLI_SERVE_REPLICA)

    GET  /health    {"name", "classes"} once the model is loaded
    POST /predict   float32 rows as application/octet-stream with `x-shape: rows,d1,...` (the front's
                    form), or JSON {"inputs": [[...], ...]}; answers {"probs": [[...], ...]}

It ends by itself once the front it serves has gone (GONE_AFTER failed probes in a row after it was seen,
or none came within the spec's wait_s), so cancelling the front's job ends the whole service.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import numpy as np
from fastapi import FastAPI, Request

from suanli.core.net import bind_host
from suanli.serve.spec import INDEX_ENV, EnsembleSpec, spec_from_env

POLL_S = 1.0
GONE_AFTER = 3
HOLD_S = 3600.0  # how long a `no_answer` replica holds a request (the front gives up long before)


def wrong_labels(probs: np.ndarray) -> np.ndarray:
    """The `wrong_labels` attack: certain of the label after the model's own, so that colluding replicas
    agree with each other on the same wrong answer (the strongest case for a vote)."""
    wrong = (probs.argmax(axis=1) + 1) % probs.shape[1]
    return np.eye(probs.shape[1])[wrong]


def build_app(spec: EnsembleSpec, index: int, on_gone) -> object:  # type: ignore[no-untyped-def]
    """The replica's FastAPI app; `on_gone()` is called once the front has gone."""
    from fastapi.responses import JSONResponse, Response
    from starlette.concurrency import run_in_threadpool

    from suanli.core.net import Peer
    from suanli.serve import models

    replica = spec.replicas[index]
    predict = models.load(spec, replica)
    classes = models.probe(spec, replica, predict)
    row = int(np.prod(spec.input_shape))

    async def watch_front() -> None:
        address = spec.front.address or ""
        front = Peer(address, spec.wait_s, GONE_AFTER)
        while True:
            await asyncio.sleep(POLL_S)
            found = await asyncio.to_thread(front.step)
            if found is not None:
                why = "has gone" if found == "gone" else f"did not answer within {spec.wait_s:g} s"
                print(f"replica {replica.name}: the front at {address} {why}; ending", flush=True)
                on_gone()
                return

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_app):  # type: ignore[no-untyped-def]
        task = asyncio.create_task(watch_front())
        yield
        task.cancel()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    def bad(status: int, line: str) -> Response:
        return JSONResponse({"error": line}, status_code=status)

    @app.get("/health")
    async def health() -> dict:
        return {"name": replica.name, "classes": classes, "model": replica.model}

    @app.post("/predict")
    async def predict_route(request: Request) -> Response:
        body = await request.body()
        try:
            if request.headers.get("content-type", "").startswith("application/octet-stream"):
                shape = [int(d) for d in request.headers.get("x-shape", "").split(",")]
                x = np.frombuffer(body, dtype=np.float32).reshape(shape)
            else:
                x = np.asarray(json.loads(body)["inputs"], dtype=np.float32)
                x = x.reshape((-1, *spec.input_shape))
        except (ValueError, TypeError, KeyError) as e:
            return bad(400, f"inputs: must be float32 rows of shape {spec.input_shape} ({e})")
        if x.ndim < 1 or x.size != x.shape[0] * row:
            return bad(422, f"inputs: must be rows of shape {spec.input_shape}")
        if replica.attack == "no_answer":
            await asyncio.sleep(HOLD_S)
        probs = await run_in_threadpool(predict, x.reshape((-1, *spec.input_shape)))
        if replica.attack == "wrong_labels":
            probs = wrong_labels(probs)
        return Response(json.dumps({"probs": np.round(probs, 6).tolist()}), media_type="application/json")

    return app


def main() -> int:
    import uvicorn

    spec = spec_from_env(os.environ)
    index = int(os.environ[INDEX_ENV])
    replica = spec.replicas[index]
    assert replica.address is not None, "the driver resolves every replica's address"
    _host, port = replica.address.rsplit(":", 1)
    server: uvicorn.Server | None = None

    def on_gone() -> None:
        if server is not None:
            server.should_exit = True

    app = build_app(spec, index, on_gone)
    config = uvicorn.Config(
        app, host=bind_host(replica.address), port=int(port),  # type: ignore[arg-type]
        log_level="warning", timeout_graceful_shutdown=1, access_log=False,
    )  # fmt: skip
    server = uvicorn.Server(config)
    print(f"replica {replica.name}: {replica.model} on {replica.address}", flush=True)
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
