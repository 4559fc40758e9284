"""Prometheus metrics, on a registry per app (so several apps in one process, as in tests, do not clash).

Request counts and latencies are labelled by the route *template* (``/v1/studies/{study_id}``), never by
the raw path, to keep label cardinality bounded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from api.schemas import StudyState
from service.repositories import StudyRepository


class _StudiesByState(Collector):
    """Counts studies per state from the database at scrape time."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("scaleladder_studies", "Studies by state (all tenants)", labels=["state"])
        with self.session_factory() as session:
            counts = StudyRepository(session).count_by_state()
        for state in StudyState:
            family.add_metric([state.value], counts.get(state, 0))
        yield family


class ServiceMetrics:
    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("scaleladder_http_requests", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("scaleladder_http_request_duration_seconds", "HTTP request latency",
                                 ["method", "route"], registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.measurements = Counter("scaleladder_measurements_ingested", "Measurements stored",
                                    registry=self.registry)
        self.trials_suggested = Counter("scaleladder_trials_suggested", "Trials handed out by ask",
                                        registry=self.registry)
        self.scaling_fits = Counter("scaleladder_scaling_fits", "Scaling-law fits computed (a cached answer is "
                                    "none)", ["outcome"], registry=self.registry)
        self.scaling_fits_running = Gauge("scaleladder_scaling_fits_running", "Scaling-law fits in progress",
                                          registry=self.registry)
        self.registry.register(_StudiesByState(session_factory))

    def count_scaling_fit(self, ok: bool) -> None:
        self.scaling_fits.labels("ok" if ok else "error").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware on the hot ingest path)."""

    def __init__(self, app: Callable, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def _send(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], template, str(status["code"])).inc()
            self.metrics.latency.labels(scope["method"], template).observe(time.perf_counter() - start)
