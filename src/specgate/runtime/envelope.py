"""The ClearML ``{meta, data}`` envelope, rendered once per call with orjson."""

from __future__ import annotations

from typing import Any

import orjson

from specgate.core.versions import Version


def version_value(version: Version | None) -> str | float | None:
    """Versions are strings, except below 2.1 where ClearML renders numbers (old clients parse them)."""
    if version is None:
        return None
    return float(str(version)) if version < (2, 1) else str(version)


def render(
    call_id: str,
    trx: str,
    endpoint: str,
    requested: Version | None,
    actual: Version | None,
    status: int,
    subcode: int = 0,
    message: str = "OK",
    data: dict[str, Any] | None = None,
    error_data: dict[str, Any] | None = None,
    stack: str | None = None,
) -> bytes:
    return orjson.dumps(
        {
            "meta": {
                "id": call_id,
                "trx": trx or call_id,
                "endpoint": {
                    "name": endpoint,
                    "requested_version": version_value(requested) if requested is not None else 1.0,
                    "actual_version": version_value(actual),
                },
                "result_code": status,
                "result_subcode": subcode,
                "result_msg": message,
                "error_stack": stack,
                "error_data": error_data or {},
            },
            "data": data if data is not None else {},
        }
    )
