"""A real OTLP peer for tests: a receiver on loopback built on the official opentelemetry-proto service
definitions, over gRPC (the generated *ServiceServicer stubs) and over HTTP (protobuf bodies on
/v1/metrics, /v1/traces, /v1/logs), keeping every export request it gets."""

from __future__ import annotations

import gzip
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

REQUESTS = {
    "metrics": (metrics_service_pb2.ExportMetricsServiceRequest, metrics_service_pb2.ExportMetricsServiceResponse),
    "traces": (trace_service_pb2.ExportTraceServiceRequest, trace_service_pb2.ExportTraceServiceResponse),
    "logs": (logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse),
}


class Receiver:
    def __init__(self) -> None:
        self.received: dict[str, list[Any]] = {signal: [] for signal in REQUESTS}
        self._lock = threading.Lock()
        self._stops: list[Any] = []

    def keep(self, signal: str, request: Any) -> Any:
        with self._lock:
            self.received[signal].append(request)
        return REQUESTS[signal][1]()

    # -- gRPC --------------------------------------------------------------------------------------
    def start_grpc(self) -> int:
        receiver = self

        class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - the proto's name
                return receiver.keep("metrics", request)

        class Traces(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:  # noqa: N802
                return receiver.keep("traces", request)

        class Logs(logs_service_pb2_grpc.LogsServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:  # noqa: N802
                return receiver.keep("logs", request)

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._stops.append(lambda: server.stop(grace=None))
        return port

    # -- HTTP --------------------------------------------------------------------------------------
    def start_http(self) -> int:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                signal = self.path.rsplit("/", 1)[-1]
                if self.path != f"/v1/{signal}" or signal not in REQUESTS:
                    self.send_error(404)
                    return
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                response = receiver.keep(signal, REQUESTS[signal][0].FromString(body)).SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(response)))
                self.end_headers()
                self.wfile.write(response)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._stops.append(server.shutdown)
        return server.server_address[1]

    def stop(self) -> None:
        for stop in self._stops:
            stop()

    # -- reading what arrived ----------------------------------------------------------------------
    def spans(self) -> list[tuple[Any, Any]]:
        """(resource, span) for every span received."""
        return [(rs.resource, span) for request in self.received["traces"] for rs in request.resource_spans
                for ss in rs.scope_spans for span in ss.spans]

    def metrics(self) -> dict[str, list[Any]]:
        """metric name -> every Metric message received under it, in arrival order."""
        found: dict[str, list[Any]] = {}
        for request in self.received["metrics"]:
            for rm in request.resource_metrics:
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        found.setdefault(metric.name, []).append(metric)
        return found

    def logs(self) -> list[Any]:
        return [record for request in self.received["logs"] for rl in request.resource_logs
                for sl in rl.scope_logs for record in sl.log_records]
