"""Prometheus metrics, kept in the process (no client library: the exposition format is a few lines).

Counted per call: requests by endpoint, version and HTTP status, and a latency histogram per endpoint;
gauges read at scrape time: queue lengths from Redis. With ``serve --workers N`` each worker answers
for itself, as Prometheus' own multi-process setups do without a shared directory; scrape each or sum.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from typing import Any

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[str, list[float]] = {}  # endpoint → bucket counts, then sum, then count

    def observe(self, endpoint: str, version: str, status: int, seconds: float) -> None:
        self.requests[(endpoint, version, status)] += 1
        h = self.latency.get(endpoint)
        if h is None:
            h = self.latency[endpoint] = [0.0] * (len(BUCKETS) + 3)
        h[bisect_left(BUCKETS, seconds)] += 1
        h[-2] += seconds
        h[-1] += 1

    def render(self, queue_lengths: dict[str, int]) -> str:
        out = ["# HELP specgate_requests_total Calls answered, by endpoint, version and HTTP status.",
               "# TYPE specgate_requests_total counter"]  # fmt: skip
        for (endpoint, version, status), n in sorted(self.requests.items()):
            out.append(f'specgate_requests_total{{endpoint="{_esc(endpoint)}",version="{version}",status="{status}"}} {n}')
        out += ["# HELP specgate_request_seconds Time to answer a call, by endpoint.",
                "# TYPE specgate_request_seconds histogram"]  # fmt: skip
        for endpoint, h in sorted(self.latency.items()):
            label, running = _esc(endpoint), 0.0
            for bound, n in zip((*BUCKETS, float("inf")), h[: len(BUCKETS) + 1]):
                running += n
                le = "+Inf" if bound == float("inf") else repr(bound)
                out.append(f'specgate_request_seconds_bucket{{endpoint="{label}",le="{le}"}} {running:g}')
            out.append(f'specgate_request_seconds_sum{{endpoint="{label}"}} {h[-2]:.6f}')
            out.append(f'specgate_request_seconds_count{{endpoint="{label}"}} {h[-1]:g}')
        out += ["# HELP specgate_queue_length Tasks waiting in a queue.", "# TYPE specgate_queue_length gauge"]
        for queue, n in sorted(queue_lengths.items()):
            out.append(f'specgate_queue_length{{queue="{_esc(queue)}"}} {n}')
        return "\n".join(out) + "\n"


def _esc(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


async def queue_lengths(client: Any) -> dict[str, int]:
    """Every queue's length, read from Redis (keys ``sg:{q:<id>}:list``)."""
    out = {}
    async for key in client.scan_iter(match="sg:{q:*}:list", count=500):
        out[key[len("sg:{q:"): -len("}:list")]] = await client.llen(key)
    return out
