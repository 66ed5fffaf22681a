"""Synthetic raw log lines for the stream benchmarks, and how they go to Kafka (one per message or
batched, :mod:`connectors.sources.kafka.log_batches`).

Forty templates across six services, with the variable parts real logs have (ids, numbers,
durations, IPs, paths, hex ids); about 6 % WARN and 3 % ERROR. Deterministic for a seed. Lines are
spread evenly in event time over ``minutes`` ending at ``end`` (so the aggregates have several
minutes to write) and keyed by service, so a service's lines keep their order in one partition.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from connectors.sources.kafka.log_batches import batch_value

SERVICES = ("frontend", "cart", "checkout", "catalog", "payments", "search")
_INFO = (
    "GET /api/items/{n} 200 in {ms} ms",
    "POST /api/cart/{n}/add 201 in {ms} ms",
    "GET /static/js/app.{hex}.js 304 in {ms} ms",
    "cache hit for key user:{n}:profile",
    "cache miss for key product:{n} loading from db",
    "session {hex} refreshed for user {n}",
    "order {n} created with {k} items total {price} EUR",
    "payment {hex} authorised for order {n}",
    "search query took {ms} ms returned {k} results",
    "connection from {ip}:{port} accepted",
    "worker {k} picked job {n} from queue checkout-events",
    "health check ok in {ms} ms",
    "flushed {k} metrics to collector in {ms} ms",
    "user {n} logged in from {ip}",
    "rendered page /product/{n} in {ms} ms",
    "reloaded config from /etc/app/conf.d/{k}.yaml",
    "kafka consumer lag {k} on partition {p}",
    "scheduled task cleanup-{k} finished in {ms} ms",
    "GET /api/recommendations?user={n}&limit={k} 200 in {ms} ms",
    "stored blob {hex} size {n} bytes",
    "inventory updated for sku {n} qty {k}",
    "request {hex} routed to backend {ip}:{port}",
    "gc pause {ms} ms heap {k} MB",
    "opened db connection {k} of pool size 50",
    "email queued for user {n} template order-confirmation",
    "token {hex} validated in {ms} ms",
    "shipment {n} label created carrier dhl",
    "price list {k} loaded with {n} entries",
)
_WARN = (
    "slow query on table orders took {ms} ms",
    "retrying call to payments attempt {k} of 3",
    "connection pool at {k} of 50 connections",
    "response from {ip}:{port} took {ms} ms above budget",
    "disk usage of /var/lib/app at {k} percent",
    "deprecated API /v1/items/{n} called by client {hex}",
)
_ERROR = (
    "upstream {ip}:{port} refused connection after {ms} ms",
    "payment {hex} declined: card issuer timeout",
    "failed to write order {n} to db: deadlock detected",
    "unhandled exception in worker {k}: KeyError 'sku-{n}'",
    "circuit breaker open for service inventory after {k} failures",
    "request {hex} failed with status 503 in {ms} ms",
)


@dataclass(frozen=True)
class Line:
    service: str
    ts: float  # epoch seconds
    level: str
    message: str

    def body(self) -> dict[str, Any]:
        return {
            "ts": self.ts,
            "service": self.service,
            "resource": "i-1",
            "level": self.level,
            "message": self.message,
        }


def lines(n: int, *, end: float | None = None, minutes: int = 5, seed: int = 0) -> Iterator[Line]:
    """``n`` lines over ``minutes`` ending at ``end`` (epoch seconds; default now), time-ordered."""
    rng = random.Random(seed)
    end = time.time() if end is None else end
    start, step = end - minutes * 60, minutes * 60 / max(n, 1)
    for i in range(n):
        roll = rng.random()
        level, pool = (
            ("ERROR", _ERROR) if roll < 0.03 else ("WARN", _WARN) if roll < 0.09 else ("INFO", _INFO)
        )
        text = rng.choice(pool).format(
            n=rng.randrange(1, 10 ** rng.randrange(1, 8)),
            ms=rng.randrange(1, 5000),
            k=rng.randrange(1, 100),
            p=rng.randrange(0, 12),
            hex=f"{rng.getrandbits(48):012x}",
            ip=f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            port=rng.randrange(1024, 65535),
            price=f"{rng.randrange(1, 999)}.{rng.randrange(100):02d}",
        )
        yield Line(SERVICES[i % len(SERVICES)], round(start + i * step, 6), level, text)


def messages(source: Iterator[Line], *, batch_lines: int) -> Iterator[tuple[str, bytes, int]]:
    """``(service, value, lines in it)`` per Kafka message: one line each (``batch_lines`` 1) or
    batches of up to ``batch_lines`` lines of one service, in the order they were logged."""
    if batch_lines <= 1:
        for line in source:
            yield line.service, json.dumps(line.body()).encode(), 1
        return
    open_batches: dict[str, list[dict[str, Any]]] = {}
    for line in source:
        batch = open_batches.setdefault(line.service, [])
        batch.append({"ts": line.ts, "level": line.level, "message": line.message})
        if len(batch) >= batch_lines:
            yield (
                line.service,
                json.dumps(batch_value(line.service, batch, resource="i-1")).encode(),
                len(batch),
            )
            open_batches[line.service] = []
    for service, batch in open_batches.items():
        if batch:
            yield service, json.dumps(batch_value(service, batch, resource="i-1")).encode(), len(batch)
