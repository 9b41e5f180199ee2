"""Request validation throughput: specgate's generated validators vs the `jsonschema` reference.

    .venv/bin/python bench/validate.py                  # about 30 s (1.5 s per rate)
    BENCH_VALIDATE_SECONDS=2 .venv/bin/python bench/validate.py

For the real request schemas of a few heavy endpoints (from ``specgate.runtime.tables.load()``, the
tables the server loads), with realistic SDK bodies, it prints validations per second of

- the runtime check the RPC frontend runs (``Validators.check``: defaults filled in, jsonschema-rs;
  the null scan skipped, as the frontend skips it for bodies whose bytes hold no ``null``),
- the bare jsonschema-rs ``is_valid`` on the same prepared body,
- ``jsonschema.Draft7Validator.is_valid`` on the same (lenient) schema and body,

and the ratios to ``jsonschema``. Issue 8's target: validation >= 200x jsonschema. Both validators are
also shown to reject the same broken body, so neither is timed on a trivially empty schema.
"""

from __future__ import annotations

import os
import sys

_BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _BENCH] + [_BENCH]

import argparse  # noqa: E402
import copy  # noqa: E402
from importlib import metadata  # noqa: E402
import time  # noqa: E402

from benchlib import (  # noqa: E402
    EVENT_LOG,
    EVENT_SCALAR,
    QUEUES_GET_ALL,
    TASK_CREATE,
    TASK_EDIT,
    TASK_GET_ALL,
    env_float,
    rate,
    verdict,
)

TARGET = 200.0


def _broken(payload: dict) -> dict:
    """The body with one type error, deep where possible (what a real client bug looks like)."""
    bad = copy.deepcopy(payload)
    if "tags" in bad:
        bad["tags"] = ["ok", 3]
    elif "timestamp" in bad:
        bad["timestamp"] = "yesterday"
    else:
        bad["page_size"] = "fifty"
    return bad


CASES = [
    ("tasks.create", "2.23", TASK_CREATE),
    ("tasks.get_all", "2.23", TASK_GET_ALL),
    ("tasks.edit", "2.23", TASK_EDIT),
    ("events.add", "2.23", EVENT_SCALAR),  # scalar: the commonest event the SDK sends (anyOf, 5 branches)
    ("events.add", "2.23", EVENT_LOG),
    ("queues.get_all", "2.23", QUEUES_GET_ALL),
]


def startup() -> tuple[object, float]:
    from specgate.runtime.tables import load
    from specgate.runtime.validate import Validators

    start = time.perf_counter()
    v = Validators(load())
    elapsed = time.perf_counter() - start
    return v, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=env_float("BENCH_VALIDATE_SECONDS", 1.5),
                        help="time per measured rate, split over 3 rounds (env BENCH_VALIDATE_SECONDS, default 1.5)")  # fmt: skip
    args = parser.parse_args()

    import jsonschema
    import orjson

    from specgate.runtime.validate import _lenient

    v, built = startup()
    print(f"runtime start-up: tables loaded and {len(v._request)} request validators built in {built * 1000:.0f} ms")
    print(f"reference: jsonschema {metadata.version('jsonschema')} Draft7Validator; jsonschema-rs {metadata.version('jsonschema-rs')}")
    print()
    header = f"{'endpoint':<17} {'ver':<5} {'body':>6}  {'runtime check/s':>15} {'x':>6}  {'bare rs/s':>11} {'x':>6}  {'jsonschema/s':>12}"
    print(header)
    print("-" * len(header))
    worst_bare, worst_runtime = float("inf"), float("inf")
    for endpoint, version, payload in CASES:
        _, entry = v.entry(endpoint, version)
        key = entry.request
        schema = _lenient(v.tables.schemas[key])
        body = orjson.dumps(payload)
        assert b"null" not in body
        prepared = v.check(key, payload, has_nulls=False)  # defaults applied; raises if the body is invalid
        reference = jsonschema.Draft7Validator(schema)
        assert reference.is_valid(prepared), f"{endpoint}: jsonschema rejects the benchmark body"
        broken = _broken(prepared)
        assert not reference.is_valid(broken) and not v._request[key].is_valid(broken), endpoint

        # best of three interleaved rounds: the machine may be shared, and the best round is the least disturbed
        runtime = bare = slow = 0.0
        for _ in range(3):
            runtime = max(runtime, rate(lambda p: v.check(key, p, has_nulls=False), payload, args.seconds / 3))
            bare = max(bare, rate(v._request[key].is_valid, prepared, args.seconds / 3))
            slow = max(slow, rate(reference.is_valid, prepared, args.seconds / 3, batch=20))
        worst_bare, worst_runtime = min(worst_bare, bare / slow), min(worst_runtime, runtime / slow)
        label = endpoint + (f" {payload['type'].split('_')[-1]}" if endpoint == "events.add" else "")
        print(
            f"{label:<17} {entry.key:<5} {len(body):>5}B  {runtime:>15,.0f} {runtime / slow:>5.0f}x"
            f"  {bare:>11,.0f} {bare / slow:>5.0f}x  {slow:>12,.0f}"
        )
    print()
    print(f"target: validation >= {TARGET:.0f}x jsonschema")
    print(f"  bare jsonschema-rs is_valid, worst case: {worst_bare:6.0f}x  {verdict(worst_bare >= TARGET)}")
    print(f"  full runtime check, worst case:          {worst_runtime:6.0f}x  {verdict(worst_runtime >= TARGET)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
