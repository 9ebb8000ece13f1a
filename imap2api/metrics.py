"""Prometheus metrics: HTTP traffic measured in this process; sync, webhook and queue state read
from the database and the broker at scrape time, so they are right whichever process did the work."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from imap2api.crud import status as crud_status
from imap2api.db import session_scope
from imap2api.models import utcnow

log = logging.getLogger("imap2api.metrics")

registry = CollectorRegistry()
HTTP_REQUESTS = Counter(
    "imap2api_http_requests_total",
    "HTTP requests by route, method and status.",
    ["route", "method", "status"],
    registry=registry,
)
HTTP_LATENCY = Histogram(
    "imap2api_http_request_duration_seconds",
    "HTTP request latency by route and method.",
    ["route", "method"],
    registry=registry,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def queue_sizes() -> dict[str, int]:
    """Messages waiting in each Dramatiq queue of the configured broker."""
    from imap2api.workers.actors import declare_actors
    from imap2api.workers.broker import get_broker

    broker = declare_actors(get_broker())  # every queue, whether or not a job was sent yet

    sizes = {}
    for name in sorted(broker.get_declared_queues()):
        if hasattr(broker, "do_qsize"):
            sizes[name] = int(broker.do_qsize(name))
        else:
            sizes[name] = broker.queues[name].qsize()
    return sizes


class MirrorCollector(Collector):
    """Reads sync runs, lag, deliveries and queues when Prometheus scrapes."""

    def collect(self) -> Iterator[Any]:
        """Yield the metric families (an unreachable database yields none, not an error)."""
        try:
            with session_scope() as session:
                totals = crud_status.sync_run_totals(session)
                servers = crud_status.server_statuses(session)
                durations = crud_status.last_run_durations(session)
                deliveries = crud_status.delivery_totals(session)
        except Exception:  # noqa: BLE001 - /readyz reports the database; metrics stay up
            log.warning("metrics: database unavailable", exc_info=True)
            return
        runs = CounterMetricFamily("imap2api_sync_runs", "Sync runs by outcome.", labels=["status"])
        for status, count in sorted(totals["runs"].items()):
            runs.add_metric([status], count)
        yield runs
        yield CounterMetricFamily(
            "imap2api_messages_fetched", "Messages fetched by syncs.", value=totals["messages_fetched"]
        )
        lag = GaugeMetricFamily(
            "imap2api_sync_lag_seconds",
            "Seconds since the last successful sync of each server.",
            labels=["server"],
        )
        duration = GaugeMetricFamily(
            "imap2api_sync_duration_seconds",
            "Duration of each server's latest finished sync.",
            labels=["server"],
        )
        now = utcnow()
        for server in servers:
            if server.last_sync is not None:
                lag.add_metric([str(server.id)], (now - server.last_sync).total_seconds())
            if server.id in durations:
                duration.add_metric([str(server.id)], durations[server.id])
        yield lag
        yield duration
        delivered = CounterMetricFamily(
            "imap2api_webhook_deliveries", "Webhook delivery attempts by outcome.", labels=["status"]
        )
        for status, count in sorted(deliveries.items()):
            delivered.add_metric([status], count)
        yield delivered
        try:
            sizes = queue_sizes()
        except Exception:  # noqa: BLE001 - a broker outage shows in /readyz
            log.warning("metrics: broker unavailable", exc_info=True)
            return
        queued = GaugeMetricFamily(
            "imap2api_queue_messages", "Messages waiting per Dramatiq queue.", labels=["queue"]
        )
        for name, size in sizes.items():
            queued.add_metric([name], size)
        yield queued


registry.register(MirrorCollector())


def render() -> bytes:
    """The metrics page in the Prometheus text format."""
    return generate_latest(registry)


_CONVERTOR = re.compile(r"\{(\w+):\w+\}")


def route_template(path: str, route_path: str | None) -> str:
    """The route template with its mount prefix: ``/api/v1/emails/7/`` → ``/api/v1/emails/{email_id}/``.

    Raw paths would give every email id its own time series.
    """
    if not route_path:
        return "unmatched"
    route_path = _CONVERTOR.sub(r"{\1}", route_path)  # {email_id:int} → {email_id}: the name is the label
    depth = route_path.rstrip("/").count("/")
    prefix_parts = path.rstrip("/").split("/")[: max(0, path.rstrip("/").count("/") - depth + 1)]
    return "/".join(prefix_parts) + route_path if len(prefix_parts) > 1 else route_path


class MetricsMiddleware:
    """ASGI middleware counting requests and timing them by route template (not raw path)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Measure one HTTP request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def record_status(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            template = route_template(scope["path"], getattr(scope.get("route"), "path", None))
            HTTP_REQUESTS.labels(template, scope["method"], str(status["code"])).inc()
            HTTP_LATENCY.labels(template, scope["method"]).observe(time.perf_counter() - started)
