"""The front: the service users call. It fans each request out to every live replica at once, waits at
most `timeout_s` for each, combines the answers by the ensemble's vote, and applies the drop rule.

    python -m suanli.serve.front          (SUANLI_SERVE_SPEC: the resolved spec)

    POST /predict   {"inputs": [[...], ...]} (rows of input_shape; one row may be given bare) ->
                    {"labels", "agreed", "answered", "asked", "live", "replicas", "failed", "dropped",
                     "confidence", "vote", "latency_ms"}
    GET  /health    {"ready", "live", "replicas"}: ready once every replica answered /health (or wait_s
                    passed; those that did not start are dropped)
    GET  /status    the ensemble, each replica's record (live or dropped, why, answers, disagreement),
                    latency p50/p95 and throughput

Every bad request is answered with a 4xx and {"error": "<one line>"}; nothing a client sends ends the front.
Latency, throughput and the live replicas are logged as metrics every `front.report_s`, and each drop at
once (`dropped_<replica>` = 1), so `suanli logs` and `suanli status` show them.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from collections import deque
from contextlib import asynccontextmanager

import numpy as np
from fastapi import FastAPI, Request

from suanli.core.net import bind_host
from suanli.serve.spec import EnsembleSpec, spec_from_env
from suanli.serve.vote import Tracker, combine

LATENCIES_KEPT = 10_000
HEALTH_POLL_S = 0.2


def describe(error: BaseException) -> str:
    """Why a replica gave no answer, in a few words."""
    import httpx

    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    if isinstance(error, httpx.ConnectError):
        return "cannot connect"
    return (str(error).splitlines() or [type(error).__name__])[0][:200] or type(error).__name__


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def metric(name: str, value: float, step: int) -> None:
    print(json.dumps({"metric": name, "value": value, "step": step}), flush=True)


class Ensemble:
    """The front's state: the replicas' addresses and records, the latencies seen, the counters."""

    def __init__(self, spec: EnsembleSpec) -> None:
        import httpx

        self.spec = spec
        self.tracker = Tracker([r.name for r in spec.replicas], spec.drop)
        self.by_name = {r.name: r for r in spec.replicas}
        self.latencies: deque[float] = deque(maxlen=LATENCIES_KEPT)
        self.window: list[float] = []  # latencies since the last report
        self.requests = 0
        self.rows = 0
        self.errors = 0
        self.started = time.time()
        self.ready = False
        self.row_shape = tuple(spec.input_shape)
        self.step = 0
        limits = httpx.Limits(max_connections=64 * len(spec.replicas), max_keepalive_connections=64)
        self.http = httpx.AsyncClient(timeout=spec.timeout_s, limits=limits)

    def flag(self, name: str, reason: str | None) -> None:
        if reason is None:
            return
        print(f"front: replica {name} dropped and flagged: {reason}", flush=True)
        metric(f"dropped_{name}", 1.0, self.step)
        metric("replicas_live", float(len(self.tracker.live())), self.step)

    async def wait_for_replicas(self) -> None:
        """Ready once every replica answers /health; those that do not within wait_s are dropped."""
        deadline = time.monotonic() + self.spec.wait_s
        waiting = {r.name for r in self.spec.replicas}
        while waiting and time.monotonic() < deadline:
            for name in sorted(waiting):
                try:
                    reply = await self.http.get(f"http://{self.by_name[name].address}/health", timeout=1.0)
                    if reply.status_code == 200:
                        waiting.discard(name)
                except Exception:  # not listening yet
                    pass
            if waiting:
                await asyncio.sleep(HEALTH_POLL_S)
        for name in sorted(waiting):
            self.flag(
                name, self.tracker.drop(name, f"did not start within {self.spec.wait_s:g} s", time.time())
            )
        self.ready = True
        print(
            f"front: ready with {len(self.tracker.live())} of {len(self.spec.replicas)} replicas", flush=True
        )

    async def ask(self, name: str, x: np.ndarray) -> np.ndarray:
        reply = await self.http.post(
            f"http://{self.by_name[name].address}/predict", content=x.tobytes(),
            headers={"content-type": "application/octet-stream", "x-shape": ",".join(map(str, x.shape))},
        )  # fmt: skip
        if reply.status_code != 200:
            raise RuntimeError(f"HTTP {reply.status_code}")
        probs = np.asarray(reply.json()["probs"], dtype=np.float64)
        if probs.ndim != 2 or probs.shape[0] != x.shape[0] or not np.all(np.isfinite(probs)):
            raise RuntimeError(f"a malformed answer of shape {list(probs.shape)}")
        return probs

    async def predict(self, x: np.ndarray) -> tuple[int, dict]:
        """(HTTP status, body) for one validated batch."""
        t0 = time.perf_counter()
        asked = self.tracker.live()
        answers = await asyncio.gather(*(self.ask(n, x) for n in asked), return_exceptions=True)
        now = time.time()
        ok = {n: a for n, a in zip(asked, answers, strict=True) if isinstance(a, np.ndarray)}
        classes = {a.shape[1] for a in ok.values()}
        if len(classes) > 1:  # a replica answered another number of classes: the most common wins
            common = max(classes, key=lambda c: sum(a.shape[1] == c for a in ok.values()))
            for n in [n for n, a in ok.items() if a.shape[1] != common]:
                answers[asked.index(n)] = RuntimeError(f"answered {ok.pop(n).shape[1]} classes, not {common}")
        failed = []
        for n, a in zip(asked, answers, strict=True):
            if not isinstance(a, np.ndarray):
                failed.append(n)
                self.flag(n, self.tracker.failed(n, describe(a), now))
        if len(ok) < self.spec.quorum:
            self.errors += 1
            line = (
                f"only {len(ok)} of {len(asked)} replicas answered in time; the quorum is {self.spec.quorum}"
            )
            return 503, {"error": line, "failed": failed, "dropped": self._dropped()}
        names = list(ok)
        combined = combine([ok[n] for n in names], [self.by_name[n].weight for n in names], self.spec.vote)
        for n in names:
            disagreed = ok[n].argmax(axis=1) != combined.labels
            self.flag(n, self.tracker.answered(n, disagreed, now))
        ms = (time.perf_counter() - t0) * 1000
        self.latencies.append(ms)
        self.window.append(ms)
        self.requests += 1
        self.rows += x.shape[0]
        confidence = combined.scores[np.arange(len(combined.labels)), combined.labels]
        return 200, {
            "labels": combined.labels.tolist(), "agreed": combined.agreed.tolist(), "answered": len(ok),
            "asked": len(asked), "live": len(self.tracker.live()), "replicas": len(self.spec.replicas),
            "failed": failed, "dropped": self._dropped(), "confidence": np.round(confidence, 4).tolist(),
            "vote": self.spec.vote, "latency_ms": round(ms, 3),
        }  # fmt: skip

    def _dropped(self) -> list[str]:
        return [n for n, r in self.tracker.replicas.items() if r.state == "dropped"]

    def status(self) -> dict:
        lat = list(self.latencies)
        elapsed = max(time.time() - self.started, 1e-9)
        replicas = []
        for r in self.spec.replicas:
            record = self.tracker.replicas[r.name].to_json()
            replicas.append({**record, "node": r.node, "address": r.address, "model": r.model,
                             "weight": r.weight, "attack": r.attack})  # fmt: skip
        return {
            "name": self.spec.name, "vote": self.spec.vote, "ready": self.ready,
            "timeout_s": self.spec.timeout_s, "drop": self.spec.drop.model_dump(), "quorum": self.spec.quorum,
            "requests": self.requests, "rows": self.rows, "errors": self.errors,
            "live": len(self.tracker.live()), "latency_p50_ms": percentile(lat, 50),
            "latency_p95_ms": percentile(lat, 95),
            "throughput_rps": self.requests / elapsed, "replicas": replicas,
        }  # fmt: skip

    async def report(self) -> None:
        """Latency p50/p95 and throughput of each interval in the job's metrics."""
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.spec.front.report_s)
            now = time.monotonic()
            window, self.window = self.window, []
            self.step += 1
            metric("requests", float(self.requests), self.step)
            metric("replicas_live", float(len(self.tracker.live())), self.step)
            if window:
                metric("latency_p50_ms", float(np.percentile(window, 50)), self.step)
                metric("latency_p95_ms", float(np.percentile(window, 95)), self.step)
                metric("throughput_rps", len(window) / max(now - last, 1e-9), self.step)
            last = now


def parse_inputs(body: bytes, spec: EnsembleSpec) -> np.ndarray:
    """The request's rows as float32 (rows x input_shape); ValueError with one line for anything else."""
    try:
        doc = json.loads(body)
    except RecursionError:
        raise ValueError("body: nests deeper than JSON rows of numbers need") from None
    except ValueError as e:
        raise ValueError(f"body: must be JSON ({str(e).splitlines()[0][:80]})") from None
    if not isinstance(doc, dict) or "inputs" not in doc:
        raise ValueError('body: must be a JSON object {"inputs": [[...], ...]}')
    shape = tuple(spec.input_shape)
    try:
        x = np.asarray(doc["inputs"], dtype=np.float32)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise ValueError(
            f"inputs: must be numbers in rows of shape {list(shape)} (a ragged or non-numeric list)"
        ) from None
    if x.shape == shape:
        x = x[None]
    if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != shape or x.shape[0] == 0:
        raise ValueError(f"inputs: has shape {list(x.shape)}; must be rows of shape {list(shape)}")
    if x.shape[0] > spec.front.max_rows:
        raise ValueError(f"inputs: has {x.shape[0]} rows; at most {spec.front.max_rows} per request")
    if not np.all(np.isfinite(x)):
        raise ValueError("inputs: must be finite numbers (no NaN or infinity)")
    return x


def build_app(spec: EnsembleSpec) -> object:  # type: ignore[no-untyped-def]
    from fastapi.responses import JSONResponse

    ensemble = Ensemble(spec)
    row_values = math.prod(spec.input_shape)
    max_bytes = spec.front.max_rows * row_values * 32 + 4096  # generous for JSON numbers

    @asynccontextmanager
    async def lifespan(_app):  # type: ignore[no-untyped-def]
        tasks = [asyncio.create_task(ensemble.wait_for_replicas()), asyncio.create_task(ensemble.report())]
        yield
        for t in tasks:
            t.cancel()
        await ensemble.http.aclose()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ensemble = ensemble

    def bad(status: int, line: str) -> JSONResponse:
        return JSONResponse({"error": line}, status_code=status)

    @app.get("/health")
    async def health() -> dict:
        return {"ready": ensemble.ready, "live": len(ensemble.tracker.live()), "replicas": len(spec.replicas)}

    @app.get("/status")
    async def status() -> dict:
        return ensemble.status()

    @app.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        if not ensemble.ready:
            return bad(503, "the ensemble is starting: its replicas are loading")
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > max_bytes:
                return bad(413, f"body: larger than {max_bytes} bytes ({spec.front.max_rows} rows at most)")
        try:
            x = parse_inputs(bytes(body), spec)
        except ValueError as e:
            ensemble.errors += 1
            return bad(422 if str(e).startswith("inputs") else 400, str(e))
        code, doc = await ensemble.predict(x)
        return JSONResponse(doc, status_code=code)

    return app


def main() -> int:
    import uvicorn

    spec = spec_from_env(os.environ)
    assert spec.front.address is not None, "the driver resolves the front's address"
    _host, port = spec.front.address.rsplit(":", 1)
    config = uvicorn.Config(
        build_app(spec), host=bind_host(spec.front.address),  # type: ignore[arg-type]
        port=int(port), log_level="warning", timeout_graceful_shutdown=1, access_log=False,
    )  # fmt: skip
    print(
        f"front {spec.name}: {spec.vote} vote of {len(spec.replicas)} replicas on {spec.front.address}",
        flush=True,
    )
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
