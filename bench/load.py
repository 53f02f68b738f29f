"""A small load generator: a bounded number of requests from N concurrent clients (threads
with their own keep-alive connection), within a time limit; throughput and latency
percentiles, errors counted."""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    @classmethod
    def merge(cls, parts: list[LoadResult]) -> LoadResult:
        """Several runs of the same requests as one (their requests over their summed time)."""
        statuses: dict[int, int] = {}
        for part in parts:
            for status, n in part.statuses.items():
                statuses[status] = statuses.get(status, 0) + n
        return cls(
            sum(p.requests for p in parts),
            sum(p.errors for p in parts),
            sum(p.seconds for p in parts),
            [t for p in parts for t in p.latencies],
            statuses,
        )

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "rps": round(self.rps, 1),
            "p50_ms": round(self.pct(50) * 1000, 1),
            "p95_ms": round(self.pct(95) * 1000, 1),
            "p99_ms": round(self.pct(99) * 1000, 1),
            "statuses": self.statuses,
        }


def run(
    base: str,
    make_request: Callable[[int], tuple[str, str, dict[str, Any] | None, dict[str, str]]],
    total: int,
    clients: int,
    limit_seconds: float = 120,
    ok: tuple[int, ...] = (200, 201),
) -> LoadResult:
    """`make_request(i)` gives (method, path, json body, headers) of request i."""
    parts = urlsplit(base)
    counter = iter(range(total))
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    deadline = time.monotonic() + limit_seconds

    def worker() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        while time.monotonic() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            method, path, body, headers = make_request(i)
            payload = json.dumps(body).encode() if body is not None else None
            start = time.perf_counter()
            try:
                conn.request(
                    method,
                    path,
                    body=payload,
                    headers={"Content-Type": "application/json", **headers},
                )
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
                status = 0
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1
                if status not in ok:
                    errors += 1
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoadResult(len(latencies), errors, time.perf_counter() - start, latencies, statuses)


def median_seconds(fn: Callable[[], Any], repeat: int = 5) -> float:
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)
