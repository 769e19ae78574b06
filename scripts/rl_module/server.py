"""rl-infer --serve: predictions over HTTP, with live hotswap to the registry's best validated model.

    POST /predict   body: one observation or a batch, as JSON -> {"action": ..., "model_id": N}
    GET  /model     the model being served: id, path, mean reward, algorithm, env, loaded at
    GET  /healthz   {"status": "ok"}: the process is alive (a liveness probe)
    GET  /readyz    200 {"status": "ready", "model_id": N} once a model is loaded; until then 503
                    {"status": "waiting", ...} (a readiness probe: send no traffic yet)

A server started before any model is validated (a new host, a first boot) does not fail: it answers
/healthz, says 503 on /readyz, /predict and /model, and loads the first validated model that appears
through the same hotswap path, with no restart.

HTTP layer: uvicorn with a plain ASGI application, chosen on evidence (bench/README.md): on the 2-core
CI machine the standard library's ThreadingHTTPServer reached the target with one or two connections
but fell behind at four and more (its connection threads queue on the GIL), while uvicorn's single
event loop kept its p99 under 3 ms at eight.

Hotswap: a watcher thread learns of a possible new best from the registry: on PostgreSQL at once
(LISTEN for the NOTIFY a validation sends, with a look every infer.pollInterval seconds as the
fallback), on SQLite by polling PRAGMA data_version (which changes only when another connection
commits) every infer.pollInterval seconds. A model trained on another host is fetched from its store's
copy. When the best validated model changes it loads the new one beside the old and then replaces one
reference. A request holds the Predictor it started with, so in-flight requests finish on the old model
and none fails during a swap. A new best that cannot serve is refused (logged) and the old model keeps
serving: its file missing, changed or not fetched (a copy not yet in the store), or a model that loads and
cannot predict an action for a sample observation. A refused model is tried again after RETRY_FIRST_S,
then twice as long each time up to infer.pollInterval (and RETRY_MAX_S): a copy that lands late, or is
put right, is served within two poll intervals, with no restart.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from . import redact
from .config import Config
from .infer import Located, Policy, locate, predictor
from .logs import event
from .registry import Model, NoModel, Registry, RegistryError, open_registry

log = logging.getLogger(__name__)

# A refused model is tried again after this many seconds, then after twice as long each time, up to RETRY_MAX_S.
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 300.0


@dataclass
class Refusal:
    """A model that could not be served, and when it is tried again."""

    delay: float  # seconds from the last try to the next
    next_try: float  # time.monotonic()


@dataclass(frozen=True)
class Served:
    """One loaded model and what GET /model says of it."""

    predictor: Policy
    loaded_at: float

    def describe(self) -> dict[str, Any]:
        row = self.predictor.located.model
        config = self.predictor.located.config
        return {"id": row.id if row else None, "path": str(self.predictor.located.path),
                "mean_reward": row.mean_reward if row else None, "algorithm": config.agent.algorithm,
                "env_id": config.env.envId, "device": self.predictor.device, "runtime": self.predictor.runtime,
                "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at))}


class Hotswap:
    """The model being served, swapped to each new best validated model of the registry."""

    def __init__(self, config: Config, located: Located | None, follow_best: bool) -> None:
        self.config = config
        # None until the first validated model appears (only when following the registry's best).
        self.current = Served(predictor(located), time.time()) if located is not None else None
        self.follow_best = follow_best
        self.swaps = 0
        self.refused: dict[int, Refusal] = {}  # models that failed to load: tried again later, less and less often
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.follow_best:
            if self.current is None:  # the first model, before the first request
                registry = self._open()
                if registry is not None:
                    with registry:
                        self._check_safely(registry)
            self._thread = threading.Thread(target=self._watch, name="rl-hotswap", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def waiting_for(self) -> str:
        """What a server with no model yet waits for, in words."""
        given = [f"{p}={self.config.given(p)}" for p in ("env.envId", "agent.algorithm")
                 if self.config.given(p) is not None]
        return (f"no model loaded yet: waiting for the first validated model in the registry "
                f"{redact.url(self.config.registry.dbPath)}" + (f" for {', '.join(given)}" if given else ""))

    def _open(self) -> Registry | None:
        """The registry, or None while there is none yet (a new host: it appears when something is
        first trained) or it cannot be reached (said in /healthz; tried again)."""
        try:
            return open_registry(self.config, create=False)
        except NoModel:
            return None
        except RegistryError as error:
            self.last_error = str(error)
            log.warning("%s", error, extra=event("rl.error", route="hotswap"))
            return None

    def _watch(self) -> None:
        """Look again at every change the registry announces (PostgreSQL's NOTIFY at once; SQLite's commit
        counter every infer.pollInterval), and at least every pollInterval on PostgreSQL; reconnect after
        a lost connection."""
        interval = self.config.infer.pollInterval
        while not self._stop.is_set():
            registry = self._open()
            if registry is None:  # a registry about to be created: looked for every second at least
                self._stop.wait(min(interval, 1.0))
                continue
            try:
                with registry:
                    self._check_safely(registry)  # it may have changed while no one was watching
                    while not self._stop.is_set():
                        retry = self._next_retry()
                        wait = interval if retry is None else min(interval, max(retry - time.monotonic(), 0.01))
                        if registry.wait_for_change(wait, self._stop) or \
                                (retry is not None and time.monotonic() >= retry and not self._stop.is_set()):
                            self._check_safely(registry)
            except Exception as error:  # a dropped connection: the model being served keeps serving
                self.last_error = f"{type(error).__name__}: {error}"
                log.warning("hotswap lost the registry (%s); trying again", self.last_error,
                            extra=event("rl.error", route="hotswap"))
                self._stop.wait(interval)

    def _next_retry(self) -> float | None:
        """When the next refused model is due to be tried again (time.monotonic()), if one is not yet due. One
        due already was looked at when it fell due: tried then if it was the best, and it is tried at the next
        change of the registry that makes it the best."""
        now = time.monotonic()
        return min((r.next_try for r in self.refused.values() if r.next_try > now), default=None)

    def health(self) -> dict[str, Any]:
        """What /healthz says of the watcher: whether it runs, and its last error."""
        if not self.follow_best:
            return {"hotswap": "off"}
        alive = self._thread is not None and self._thread.is_alive()
        return {"hotswap": "watching" if alive else "stopped", "last_error": self.last_error,
                "refused": sorted(self.refused)}

    def _check_safely(self, registry: Registry) -> None:
        try:
            self.check(registry)
        except Exception as error:  # one failed attempt must not end the watching: the next change tries again
            self.last_error = f"{type(error).__name__}: {error}"
            log.exception("hotswap check failed; the current model keeps serving",
                          extra=event("rl.error", route="hotswap"))

    def check(self, registry: Registry) -> None:
        """Swap to the best validated model when it is another one than the one served: among the models of
        the env served (env.envId when given, else the served model's own), never one that was refused; a
        model that fails to load is refused and the next best is tried."""
        while True:
            served = self.current.predictor.located.model if self.current is not None else None
            env_id = self.config.given("env.envId") or (served.env_id if served is not None else None)
            now = time.monotonic()
            waiting = {model_id for model_id, refusal in self.refused.items() if refusal.next_try > now}
            candidates = registry.models(validated=True, env_id=env_id,
                                         algorithm=self.config.given("agent.algorithm"), limit=len(waiting) + 1)
            best = next((m for m in candidates if m.id not in waiting), None)
            if best is None or (served is not None and best.id == served.id):
                return
            if self._swap_to(best, served):
                return

    def _swap_to(self, best: Model, served: Model | None) -> bool:
        keeps = f"model {served.id} keeps serving" if served else "still waiting for a model"
        try:
            located = locate(self.config.replace("infer.modelId", best.id, "hotswap"))
            candidate = predictor(located)
            if self.current is not None:
                _same_spaces(self.current.predictor, candidate)
        except Exception as error:  # whatever the model does on loading (a missing encoder's module, ...)
            before = self.refused.get(best.id)
            # Never longer apart than the poll: a copy put right is served within two poll intervals.
            cap = min(RETRY_MAX_S, max(RETRY_FIRST_S, float(self.config.infer.pollInterval)))
            delay = RETRY_FIRST_S if before is None else min(before.delay * 2, cap)
            self.refused[best.id] = Refusal(delay, time.monotonic() + delay)
            self.last_error = f"model {best.id}: {type(error).__name__}: {error}"
            log.warning("hotswap to model %d refused: %s; %s; tried again in %g s", best.id, error, keeps, delay,
                        extra=event("rl.model.refused", model_id=best.id))
            return False
        self.refused.pop(best.id, None)
        first = self.current is None
        self.current = Served(candidate, time.time())  # one reference: in-flight requests keep the old one
        self.swaps += 0 if first else 1
        log.info("%s model %d (mean reward %.2f)", "serving the first validated" if first else "hotswapped to",
                 best.id, best.mean_reward or 0.0,
                 extra=event("rl.model.hotswapped", model_id=best.id, model_path=str(located.path)))
        return True


def _same_spaces(serving: Policy, candidate: Policy) -> None:
    """A swap keeps the API: the same observations in, the same actions out."""
    if candidate.observation_space != serving.observation_space or \
            candidate.action_space != serving.action_space:
        raise ValueError(f"it acts on other spaces (observations {candidate.observation_space}, actions "
                         f"{candidate.action_space}) than the model served")


class _Instruments:
    """Request count and latency as OpenTelemetry metrics (when metrics are on)."""

    def __init__(self, meter_provider: Any) -> None:
        self.requests = self.duration = None
        if meter_provider is not None:
            meter = meter_provider.get_meter("rl_module")
            self.requests = meter.create_counter("rl.infer.requests", unit="{request}",
                                                 description="HTTP requests by route and status")
            self.duration = meter.create_histogram("rl.infer.request.duration", unit="s",
                                                   description="Time to answer a request")

    def record(self, route: str, status: int, seconds: float) -> None:
        if self.requests is not None and self.duration is not None:
            attributes = {"http.route": route, "http.response.status_code": status}
            self.requests.add(1, attributes)
            self.duration.record(seconds, attributes)


JSON = [(b"content-type", b"application/json")]


def _headers_only(send: Any) -> Any:
    """HEAD: the GET answer's status and headers, without its body."""

    async def sending(message: dict[str, Any]) -> None:
        await send({**message, "body": b""} if message["type"] == "http.response.body" else message)

    return sending


# A single observation's inference takes tens of microseconds: on the event loop it costs less than the hop
# to a thread. A large batch (its JSON parse alone can take many milliseconds) goes to the worker pool, so
# that /healthz and /readyz are answered promptly whatever is being computed (bench/README.md).
INLINE_BODY_BYTES = 16 * 1024
QUEUE_PER_WORKER = 4  # requests waiting for a worker, beyond which the server answers 503


PIECE_BYTES = 64 * 1024  # a big batch is parsed this much at a time (see parse)
PIECE_DEPTH = 4  # ... when its elements nest no deeper than this (a batch of images: 3)


def parse(body: bytes, dtype: Any = None) -> Any:
    """The request's JSON, as json.loads gives it, or for a big batch the same numbers as an array of
    `dtype` (what the predictor makes of them: np.asarray(observation, dtype)).

    One json.loads call holds the GIL from start to end: on a 1 MiB batch 40-60 ms during which the event
    loop (and /healthz) waits, and its 40,000 lists, alive until the inference ends, made the garbage
    collector's full passes (as long again) come every few batches. A batch — an array of arrays, with no
    strings — is parsed a piece of about PIECE_BYTES at a time instead, cut at the commas between its
    elements, and each piece becomes an array at once: the event loop gets its turn between pieces and
    the lists die young. A cut is right when both sides parse (brackets balanced on each side). Any other
    body, or a piece that does not parse or convert, is one json.loads over the whole body: the error, or
    what the predictor says of it, is the same as it always was."""
    if dtype is None or len(body) <= PIECE_BYTES:  # every single observation: nothing more per request
        return json.loads(body)
    import re

    import numpy as np

    text = body.strip(b" \t\n\r")  # JSON's whitespace
    head = re.match(rb"\[(?:[ \t\n\r]*\[){0,%d}" % (PIECE_DEPTH + 1), text)
    depth = head.group(0).count(b"[") - 1 if head else 0  # the first element's nesting
    if not 1 <= depth <= PIECE_DEPTH or not text.endswith(b"]") or b'"' in text:
        return json.loads(body)
    boundary = re.compile(rb"\]" + rb"[ \t\n\r]*\]" * (depth - 1) + rb"[ \t\n\r]*,")  # an element's end
    pieces = []
    start = 1
    try:
        while True:
            cut = boundary.search(text, start + PIECE_BYTES, len(text) - 1)
            end = cut.end() - 1 if cut else len(text) - 1  # the comma after the element, or the final ]
            pieces.append(np.asarray(json.loads(b"[" + text[start:end] + b"]"), dtype=dtype))
            if cut is None:
                break
            start = end + 1
        if len({piece.shape[1:] for piece in pieces}) == 1 and pieces[0].ndim > 0:
            return np.concatenate(pieces)
    except (ValueError, TypeError, OverflowError, RecursionError):
        pass
    return json.loads(body)


class _ClientGone(Exception):
    """The connection closed before the request's body was whole."""


@dataclass(frozen=True)
class Limits:
    """What one client may take of the server (infer.maxBodyBytes, requestTimeout, workers)."""

    max_body: int
    request_timeout: float
    workers: int


def app(swap: Hotswap, instruments: _Instruments, limits: Limits) -> Callable[..., Awaitable[None]]:
    """The ASGI application. Plain ASGI, no framework: three routes do not need one."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    max_body = limits.max_body
    pool = ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="rl-infer")
    busy = [0]  # requests given to the pool and not yet answered

    async def respond(send: Any, status: int, body: dict[str, Any], route: str, started: float) -> None:
        data = json.dumps(body).encode()
        # Counted before it is sent: a client that has its answer and then reads /metrics sees it counted.
        instruments.record(route, status, time.perf_counter() - started)
        await send({"type": "http.response.start", "status": status,
                    "headers": [*JSON, (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})

    async def read_body(receive: Any, declared: int | None) -> bytes | None:
        """The body, or None when it is over the limit (declared or as it arrives). (A body that does not
        arrive in time: the protocol closes the connection, see _guarded_protocol.)"""
        if declared is not None and declared > max_body:
            return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":  # closed (evicted, timed out) before its body was whole
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] == "websocket":  # refused before the handshake: uvicorn answers 403
            await send({"type": "websocket.close", "code": 1003})
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        if method == "HEAD" and path in ("/healthz", "/readyz", "/model"):
            method, send = "GET", _headers_only(send)
        current = swap.current
        if method == "GET" and path == "/healthz":
            await respond(send, 200, {"status": "ok", **swap.health()}, "/healthz", started)
        elif method == "GET" and path == "/readyz":
            if current is None:
                await respond(send, 503, {"status": "waiting", "reason": swap.waiting_for()}, "/readyz", started)
            else:
                model = current.predictor.located.model
                await respond(send, 200, {"status": "ready", "model_id": model.id if model else None},
                              "/readyz", started)
        elif method == "GET" and path == "/model":
            if current is None:
                await respond(send, 503, {"error": swap.waiting_for()}, "/model", started)
            else:
                await respond(send, 200, current.describe(), "/model", started)
        elif path == "/predict" and method != "POST":
            await respond(send, 405, {"error": "POST an observation to /predict"}, "/predict", started)
        elif path != "/predict":
            await respond(send, 404, {"error": f"no such path: {path}"}, "other", started)
        else:
            await predict(scope, receive, send, started)

    async def predict(scope: dict[str, Any], receive: Any, send: Any, started: float) -> None:
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        try:
            body = await read_body(receive, int(declared) if declared and declared.isdigit() else None)
        except _ClientGone:
            return  # no one to answer
        if body is None:
            await respond(send, 413, {"error": f"body over the limit of {max_body} bytes (infer.maxBodyBytes)"},
                          "/predict", started)
            return
        served = swap.current  # this request finishes on this model, whatever a swap does meanwhile
        if served is None:
            await respond(send, 503, {"error": swap.waiting_for()}, "/predict", started)
            return
        predictor = served.predictor
        space = predictor.observation_space
        dtype = None if type(space).__name__ == "Dict" else getattr(space, "dtype", None)

        def work() -> Any:
            return predictor.predict(parse(body, dtype))

        try:
            if len(body) <= INLINE_BODY_BYTES:
                action = predictor.predict(json.loads(body))
            elif busy[0] >= limits.workers * QUEUE_PER_WORKER:
                await respond(send, 503, {"error": "busy: every inference worker is taken and the queue is full "
                                                   "(infer.workers); try again"}, "/predict", started)
                return
            else:
                busy[0] += 1
                try:
                    action = await asyncio.get_running_loop().run_in_executor(pool, work)
                finally:
                    busy[0] -= 1
        except (ValueError, RecursionError, OverflowError) as error:  # malformed JSON, wrong shape or dtype
            said = _not_json(error, space) if isinstance(error, json.JSONDecodeError) else str(error)
            await respond(send, 400, {"error": said or type(error).__name__}, "/predict", started)
            return
        except Exception as error:  # never take the server down for one request
            log.exception("request failed", extra=event("rl.error", route="/predict"))
            await respond(send, 500, {"error": f"{type(error).__name__}: {error}"}, "/predict", started)
            return
        row = served.predictor.located.model
        await respond(send, 200, {"action": action, "model_id": row.id if row else None}, "/predict", started)

    return application


def _guarded_protocol(max_connections: int, request_timeout: float) -> type:
    """uvicorn's HTTP/1.1 protocol with what it lacks against slow or idle clients. Past `max_connections`,
    a new connection closes the one that has waited longest for its client: idle since its last answer (or
    since it was made), or with a request whose head or body is still coming (that one gets 503 first).
    A connection whose request is whole and being answered is never closed; when every other one is, the
    new one goes. File descriptors stay bounded, and neither idle sockets nor half-sent bodies (a head with
    a Content-Length, then a byte a second) can lock out /healthz: a probe's connection is the newest, and
    its request is whole at once. The oldest is found in constant time: clients that connect again as fast
    as they are closed make the server do this for every connection (bench/serve_slow_clients.py).
    A request (head and body) not whole within `request_timeout` seconds of its first byte — or of the
    connection, for the first — gets 408 and the connection is closed. (uvicorn itself times out only idle
    keep-alive connections.) The deadline is one timer per request, armed only while a request is
    incomplete: a keep-alive client sending whole requests costs nothing (bench/serve.py)."""
    from collections import OrderedDict

    from uvicorn.protocols.http.h11_impl import H11Protocol

    # The open connections, by whom they wait for: their client (a request, or the rest of one), oldest wait
    # first; or the server (a whole request being answered). One being closed leaves at once: it may stay in
    # uvicorn's own set for a while.
    waiting: OrderedDict[Any, None] = OrderedDict()
    answering: set[Any] = set()

    class GuardedH11Protocol(H11Protocol):
        _deadline: Any = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            waiting[self] = None
            while len(waiting) + len(answering) > max_connections:
                oldest = next(iter(waiting))
                if oldest is self:  # every other one is being answered: this one goes
                    self._forget()
                    transport.close()
                    return
                oldest._evict()
            self._arm()

        def _idle(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _incomplete(self) -> bool:
            """A request head, or the rest of a body, is awaited."""
            return self._idle() or self.cycle.more_body

        def _forget(self) -> None:
            waiting.pop(self, None)
            answering.discard(self)

        def _evict(self) -> None:
            """Closed to make room; a request under way (its body still coming) hears why first."""
            self._forget()
            if not self._idle() and not self.cycle.response_started:
                self.transport.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close"
                                     b"\r\nretry-after: 1\r\n\r\n")
            self.transport.close()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            cycle = self.cycle  # _incomplete(), inlined: this runs for every request
            if cycle is None or cycle.response_complete or cycle.more_body:
                if self._deadline is None:
                    self._arm()
            else:
                if self._deadline is not None:
                    self._disarm()
                if self in waiting:  # whole: the server's turn
                    del waiting[self]
                    answering.add(self)

        def on_response_complete(self) -> None:
            super().on_response_complete()  # may start a pipelined request already whole
            self._forget()
            if not self.transport.is_closing():
                if self._incomplete():
                    waiting[self] = None  # the newest wait
                else:
                    answering.add(self)
            if self._deadline is not None:
                self._disarm()  # uvicorn's keep-alive timeout takes over

        def shutdown(self) -> None:
            """On SIGTERM uvicorn lets requests under way finish: one whose body is still coming would hold the
            process until its deadline. It is closed at once, told why."""
            if self.cycle is not None and self.cycle.more_body and not self.cycle.response_started:
                self._evict()
            else:
                super().shutdown()

        def handle_websocket_upgrade(self, event: Any) -> None:
            self._forget()  # the connection goes to a WebSocket protocol (which the application refuses)
            super().handle_websocket_upgrade(event)

        def connection_lost(self, exc: Exception | None) -> None:
            self._forget()
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(request_timeout, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if self._incomplete() and not self.transport.is_closing():
                self._forget()
                self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                self.transport.close()

    return GuardedH11Protocol


# asyncio accepts up to `backlog` connections each time the listening socket wakes it, before the protocol
# (which holds infer.maxConnections) sees any of them: with uvicorn's 2048, a burst of idle sockets took every
# file descriptor (EMFILE: accepting paused for a second, /healthz waited in the queue, and a traceback was
# logged for each of the remaining tries). The server takes ACCEPT_BATCH at a time; the kernel still queues
# LISTEN_BACKLOG connections for it.
ACCEPT_BATCH = 16
LISTEN_BACKLOG = 2048


def _deepen(listening: Any) -> None:
    """The kernel's queue of the listening socket back to LISTEN_BACKLOG (asyncio set it to ACCEPT_BATCH)."""
    import socket

    with socket.fromfd(listening.fileno(), listening.family, listening.type) as same:
        same.listen(LISTEN_BACKLOG)


def _descriptors_for(max_connections: int) -> None:
    """Room for infer.maxConnections open connections, the accept batches on their way in, and the rest of the
    process: the soft open-file limit raised as far as the hard one allows, a warning when that is short."""
    import resource

    needed = max_connections + 4 * ACCEPT_BATCH + 32
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        if raised < needed:
            log.warning("infer.maxConnections %d needs about %d open files and the limit is %d: lower it, or raise "
                        "the limit (ulimit -n, LimitNOFILE=)", max_connections, needed, raised)


def _not_json(error: json.JSONDecodeError, space: Any) -> str:
    """What a body that is not JSON should have been, for this model's observations."""
    if type(space).__name__ == "Dict":
        wanted = f"a JSON object with an array of numbers for each of {', '.join(space.spaces)}"
    else:
        wanted = "a JSON array of numbers (one observation, or a list of them for a batch)"
    return f"the body must be {wanted}; this one is not JSON ({error})"


def _check_port(config: Config) -> None:
    """Refuse a taken infer.port before anything says it serves there (uvicorn would log an error after
    our 'serving' line and exit 3). Bound as uvicorn binds, then released to it."""
    import errno
    import socket

    host, port = config.infer.host, config.infer.port
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            return  # anything else is uvicorn's to say
        raise config.refuse("infer.port", f"is already in use on {host}: another process listens there; stop it "
                                          "or choose another port (--port, RL_INFER_PORT)") from None


def serve(config: Config, located: Located | None, follow_best: bool, meter_provider: Any = None) -> None:
    """Serve until interrupted (SIGINT or SIGTERM); with no model yet (`located` None), wait for the
    registry's first validated one."""
    import gc

    _check_port(config)

    import uvicorn

    if config.infer.runtime == "torch":  # infer.runtime onnx never imports torch (its session has one thread)
        import torch

        torch.set_num_threads(1)  # one small forward pass per request: threads cost more than they give
    swap = Hotswap(config, located, follow_best)
    limits = Limits(config.infer.maxBodyBytes, config.infer.requestTimeout, config.infer.workers)
    application = app(swap, _Instruments(meter_provider), limits)

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            for listening in getattr(self, "servers", []):
                for sock in listening.sockets:
                    _deepen(sock)
            # Everything loaded so far (the imports and the first model: some 300,000 objects) out of the
            # garbage collector's sight: each full collection walked them all, 80-200 ms holding the GIL
            # while /healthz waited, as often as every few big batches. (Reference counting still frees
            # them; only a first model caught in a reference cycle outlives a swap.)
            gc.freeze()

    _descriptors_for(config.infer.maxConnections)
    server = Server(uvicorn.Config(
        application, host=config.infer.host, port=config.infer.port, log_level="warning", access_log=False,
        lifespan="on", http=_guarded_protocol(config.infer.maxConnections, config.infer.requestTimeout),
        # No limit_concurrency: uvicorn counts connections that are already closing against it and would
        # answer 503 to good requests during a burst; the protocol bounds connections itself, and the worker
        # queue answers 503 when inference is saturated.
        timeout_keep_alive=5, backlog=ACCEPT_BATCH,
        # Named, not "auto": auto imports `uvloop` by name as the server starts, and when a custom class has put
        # the working folder on the import path, a uvloop.py there would run (uvloop is not a dependency).
        loop="asyncio"))
    swap.start()
    what = str(swap.current.predictor.located.path) if swap.current is not None else "nothing yet"
    log.info("serving %s on http://%s:%d (hotswap %s)", what, config.infer.host, config.infer.port,
             "on" if follow_best else "off: a fixed model was named",
             extra=event("rl.serve.started", port=config.infer.port, host=config.infer.host))
    if swap.current is None:
        log.warning("%s; /readyz answers 503 until then", swap.waiting_for())
    try:
        server.run()
    finally:
        swap.stop()
