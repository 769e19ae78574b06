"""The OpenTelemetry plumbing the three signal features (metrics, traces, logs) share: the resource,
the exporters (OTLP JSON lines files in the run directory, or OTLP over grpc / http), failure reporting,
and a shutdown that never holds a finished run up for more than a second.

Imports opentelemetry: import it only where telemetry starts.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from . import __version__
from .config import Config

log = logging.getLogger(__name__)

SHUTDOWN_DEADLINE_S = 0.5  # all three signals together, in parallel: a run ends well within a second later
EXPORT_TIMEOUT_S = 2.0  # per export, in the background; OTEL_EXPORTER_OTLP_*TIMEOUT wins when set
QUEUE_SIZE = 4096  # bounded: when a backend is slow, the oldest telemetry is dropped, never the training
FILES = {"metrics": "metrics.otlp.jsonl", "traces": "traces.otlp.jsonl", "logs": "logs.otlp.jsonl"}
_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def otlp_json(message: Any) -> str:
    """An OTLP export request in OTLP's JSON encoding: camelCase keys, enums as numbers, and trace and
    span ids as hex strings (protobuf's JSON mapping would write them in base64)."""

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (base64.b64decode(v).hex() if k in _ID_KEYS and isinstance(v, str) else fix(v))
                    for k, v in node.items()}
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    return json.dumps(fix(MessageToDict(message, use_integers_for_enums=True)), separators=(",", ":"))


class _JsonLines:
    """One OTLP export request per line, appended by the background exporter threads."""

    def __init__(self, path: Path) -> None:
        self._handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by shutdown()
        os.chmod(path, 0o600)  # resource attributes and log records of a run: owner-only
        self._lock = threading.Lock()

    def write(self, message: Any) -> None:
        line = otlp_json(message)
        with self._lock:
            self._handle.write(line + "\n")
            self._handle.flush()

    def close(self) -> None:
        with self._lock:
            self._handle.close()


class MetricFileExporter(MetricExporter):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self._lines = _JsonLines(path)

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        self._lines.write(encode_metrics(metrics_data))
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._lines.close()


class SpanFileExporter(SpanExporter):
    def __init__(self, path: Path) -> None:
        self._lines = _JsonLines(path)

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        self._lines.write(encode_spans(spans))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._lines.close()


class LogFileExporter(LogRecordExporter):
    def __init__(self, path: Path) -> None:
        self._lines = _JsonLines(path)

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        self._lines.write(encode_logs(batch))
        return LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        self._lines.close()


class _Failures:
    """Reports the first export failure of each signal, once: as soon as the OTLP exporter complains
    (it logs every retry, so the complaint comes at the first failed attempt), or when an export
    returns a failure or raises. Training never waits for any of it."""

    KEYWORDS = {"metrics": ("metric",), "traces": ("trace", "span"), "logs": ("log",)}

    def __init__(self) -> None:
        self.endpoints: dict[str, str] = {}
        self.reported: set[str] = set()
        self._lock = threading.Lock()

    def report(self, signal: str, why: str) -> None:
        with self._lock:
            if signal in self.reported or signal not in self.endpoints:
                return
            self.reported.add(signal)
        log.warning("%s export to %s failed (%s); training goes on, further failures are not reported",
                    signal, self.endpoints[signal], why or "no answer",
                    extra={"otel.event.name": "rl.telemetry.export_failed"})

    def wrap(self, signal: str, endpoint: str, exporter: Any, failure: Any) -> None:
        """Route the exporter's results and exceptions here; an exception never reaches the SDK."""
        self.endpoints[signal] = endpoint
        original = exporter.export

        def export(*args: Any, **kwargs: Any) -> Any:
            try:
                result = original(*args, **kwargs)
            except Exception as error:  # a network error raised instead of returned
                self.report(signal, f"{type(error).__name__}: {error}")
                return failure
            if result == failure:
                self.report(signal, "")
            return result

        exporter.export = export

    def handler(self) -> logging.Handler:
        failures = self

        class ExporterComplaints(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if record.levelno < logging.WARNING:
                    return
                message = record.getMessage()
                for signal, words in failures.KEYWORDS.items():
                    if any(word in message.lower() for word in words):
                        failures.report(signal, message)
                        return

        return ExporterComplaints()


FAILURES = _Failures()


def _quiet_exporters() -> None:
    """The exporters' own retry messages go to FAILURES (reported once), not to the console."""
    exporter_logger = logging.getLogger("opentelemetry.exporter")
    if not exporter_logger.handlers:
        exporter_logger.addHandler(FAILURES.handler())
    exporter_logger.propagate = False


def _timeout(signal: str) -> float | None:
    """A short export timeout, unless OpenTelemetry's own variables set one."""
    names = ("OTEL_EXPORTER_OTLP_TIMEOUT", f"OTEL_EXPORTER_OTLP_{signal.upper()}_TIMEOUT")
    return None if any(n in os.environ for n in names) else EXPORT_TIMEOUT_S


def http_endpoint(endpoint: str, signal: str) -> str:
    """OTLP/HTTP URL of a signal: an endpoint without a path gets OpenTelemetry's /v1/<signal>, as the
    generic OTEL_EXPORTER_OTLP_ENDPOINT does; a full URL is taken as written."""
    parsed = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
    if parsed.path in ("", "/"):
        return parsed._replace(path=f"/v1/{signal}").geturl()
    return parsed.geturl()


def _otlp_exporter(signal: str, endpoint: str, protocol: str) -> Any:
    """The SDK's OTLP exporter for a signal, wrapped to report failures once."""
    timeout = _timeout(signal)
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc import _log_exporter as grpc_logs
        from opentelemetry.exporter.otlp.proto.grpc import metric_exporter as grpc_metrics
        from opentelemetry.exporter.otlp.proto.grpc import trace_exporter as grpc_traces

        # No scheme: plain text, as for a collector on the same host; http:// and https:// decide themselves.
        options: dict[str, Any] = {"endpoint": endpoint, "timeout": timeout,
                                   "insecure": None if "://" in endpoint else True}
        inner = {"metrics": grpc_metrics.OTLPMetricExporter, "traces": grpc_traces.OTLPSpanExporter,
                 "logs": grpc_logs.OTLPLogExporter}[signal](**options)
    else:
        from opentelemetry.exporter.otlp.proto.http import _log_exporter as http_logs
        from opentelemetry.exporter.otlp.proto.http import metric_exporter as http_metrics
        from opentelemetry.exporter.otlp.proto.http import trace_exporter as http_traces

        url = http_endpoint(endpoint, signal)
        inner = {"metrics": http_metrics.OTLPMetricExporter, "traces": http_traces.OTLPSpanExporter,
                 "logs": http_logs.OTLPLogExporter}[signal](endpoint=url, timeout=timeout)
        endpoint = url
    failure = {"metrics": MetricExportResult.FAILURE, "traces": SpanExportResult.FAILURE,
               "logs": LogRecordExportResult.FAILURE}[signal]
    FAILURES.wrap(signal, endpoint, inner, failure)
    return inner


def resource(config: Config, run_id: str) -> Resource:
    """service.name (OTEL_SERVICE_NAME wins), the run's identity, and OTEL_RESOURCE_ATTRIBUTES."""
    attributes: dict[str, Any] = {
        "service.version": __version__,
        "rl.algorithm": config.agent.algorithm,
        "rl.env.id": config.env.envId,
        "rl.run.id": run_id,
    }
    if "OTEL_SERVICE_NAME" not in os.environ:
        attributes["service.name"] = "rl-module"
    return Resource.create(attributes)


@dataclass
class Telemetry:
    """The providers of one run (None where a signal is off) and how to end them."""

    meter_provider: MeterProvider | None = None
    tracer_provider: TracerProvider | None = None
    logger_provider: LoggerProvider | None = None
    detach: list[Callable[[], None]] = field(default_factory=list)

    def span(self, name: str, attributes: dict[str, Any] | None = None) -> AbstractContextManager[Any]:
        """A span as the current span (a child of the current one), or nothing when traces are off."""
        if self.tracer_provider is None:
            return nullcontext()
        return self.tracer_provider.get_tracer("rl_module").start_as_current_span(name, attributes=attributes)

    def shutdown(self, deadline_s: float = SHUTDOWN_DEADLINE_S) -> None:
        """Flush and stop every signal in parallel; give up after the deadline (an unreachable backend
        must not hold the process: the exporters' own retries would take seconds)."""
        for undo in self.detach:
            undo()
        providers = [p for p in (self.meter_provider, self.tracer_provider, self.logger_provider) if p is not None]
        threads = [threading.Thread(target=p.shutdown, daemon=True, name=f"rl-telemetry-{type(p).__name__}")
                   for p in providers]
        for thread in threads:
            thread.start()
        end = time.monotonic() + deadline_s
        for thread in threads:
            thread.join(timeout=max(0.0, end - time.monotonic()))
        if any(t.is_alive() for t in threads):
            log.warning("telemetry was not fully flushed within %.1f s; the rest is dropped", deadline_s)


def disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def start(config: Config, run_id: str, directory: Path | None) -> Telemetry:
    """Start the signals the configuration enables. Without an endpoint a signal goes to an OTLP JSON
    lines file in `directory` (or nowhere when there is none)."""
    from . import logs, metrics, traces

    telemetry = Telemetry()
    if disabled() or not (config.metrics.enable or config.traces.enable or config.logs.enable):
        return telemetry
    _quiet_exporters()
    shared = resource(config, run_id)

    def exporter(signal: str, file_exporter: Callable[[Path], Any]) -> Any:
        section = getattr(config, signal)
        if section.endpoint is not None:
            return _otlp_exporter(signal, section.endpoint, section.protocol)
        return file_exporter(directory / FILES[signal]) if directory is not None else None

    if config.metrics.enable:
        readers: list[MetricReader] = []
        metric_exporter = exporter("metrics", MetricFileExporter)
        if metric_exporter is not None:
            readers.append(PeriodicExportingMetricReader(
                metric_exporter, export_interval_millis=config.metrics.exportInterval * 1000,
                export_timeout_millis=EXPORT_TIMEOUT_S * 1000))
        if config.metrics.prometheusPort is not None:
            reader, stop_serving = metrics.prometheus_reader(config.metrics.prometheusAddress,
                                                             config.metrics.prometheusPort)
            readers.append(reader)
            telemetry.detach.append(stop_serving)
        telemetry.meter_provider = MeterProvider(resource=shared, metric_readers=readers, views=metrics.views(),
                                                 shutdown_on_exit=False)
    if config.traces.enable:
        span_exporter = exporter("traces", SpanFileExporter)
        telemetry.tracer_provider = TracerProvider(resource=shared, sampler=traces.sampler(config.traces.sampleRate),
                                                   shutdown_on_exit=False)
        if span_exporter is not None:
            telemetry.tracer_provider.add_span_processor(BatchSpanProcessor(
                span_exporter, max_queue_size=QUEUE_SIZE, export_timeout_millis=EXPORT_TIMEOUT_S * 1000))
    if config.logs.enable:
        log_exporter = exporter("logs", LogFileExporter)
        telemetry.logger_provider = LoggerProvider(resource=shared, shutdown_on_exit=False)
        if log_exporter is not None:
            telemetry.logger_provider.add_log_record_processor(BatchLogRecordProcessor(
                log_exporter, max_queue_size=QUEUE_SIZE, export_timeout_millis=EXPORT_TIMEOUT_S * 1000))
        telemetry.detach.append(logs.bridge(telemetry.logger_provider, config))
    if telemetry.meter_provider is not None:
        telemetry.detach.append(metrics.count_events(telemetry.meter_provider))
    return telemetry


@contextmanager
def session(config: Config, run_id: str, directory: Path | None) -> Iterator[Telemetry]:
    telemetry = start(config, run_id, directory)
    try:
        yield telemetry
    finally:
        telemetry.shutdown()
