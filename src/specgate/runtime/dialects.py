"""What differs between REST dialects, written once: error bodies, list envelopes and auth headers."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from specgate._generated import errors as E
from specgate.core.errors import ApiError

VALIDATION = {E.VALIDATION_ERROR, E.MISSING_REQUIRED_FIELDS, E.BAD_REQUEST}


def error_body(style: str, error: ApiError) -> dict[str, Any]:
    message, field = error.summary, error.data.get("field")
    about_field = error.detail or message  # what is wrong with the field, without the generic prefix
    if style == "detail":
        if error.code in VALIDATION and field:
            return {str(field): [about_field]}
        return {"detail": message}
    if style == "message_errors":
        return {"message": message, "errors": {str(field): about_field} if field else {}}
    return {"message": message}


def error_status(profile: dict[str, Any], error: ApiError) -> int:
    if error.code in VALIDATION:
        return int(profile.get("validation_status", 400))
    return error.code.status


PAGE_PARAMS = {
    "page_number": ("page", "page_size"),
    "offset_limit": ("offset", "limit"),
    "token_body": ("token", "maximumResults"),
}


def page_window(style: str, params: dict[str, Any]) -> dict[str, int]:
    """The (offset, limit) a list call asks for, from its style's parameters (already popped from the request)."""
    def number(name: str, default: int, low: int) -> int:
        raw = params.get(name)
        try:
            value = default if raw in (None, "") else int(raw)
        except (TypeError, ValueError):
            raise ApiError(E.VALIDATION_ERROR, f"{name} must be an integer", field=name) from None
        if value < low:
            raise ApiError(E.VALIDATION_ERROR, f"{name} must be at least {low}", field=name)
        return value

    if style == "page_number":
        page, size = number("page", 1, 1), min(number("page_size", 10, 1), 1000)
        return {"offset": (page - 1) * size, "limit": size}
    if style == "offset_limit":
        return {"offset": number("offset", 0, 0), "limit": min(number("limit", 100, 1), 1000)}
    return {"offset": number("token", 0, 0), "limit": min(number("maximumResults", 50, 1), 1000)}


def envelope(style: str, result: dict[str, Any], window: dict[str, int], url: str, query: dict[str, list[str]]) -> dict[str, Any]:
    """A handler's {"items", "total"} in the dialect's list envelope, with absolute next/previous links."""
    items, total = list(result.get("items") or []), int(result.get("total", 0))
    offset, limit = window["offset"], window["limit"]
    more = offset + len(items) < total

    def link(new_offset: int) -> str:
        q = {k: v for k, v in query.items() if k not in PAGE_PARAMS[style]}
        if style == "page_number":
            q.update(page=[str(new_offset // limit + 1)], page_size=[str(limit)])
        else:
            q.update(offset=[str(new_offset)], limit=[str(limit)])
        return f"{url}?{urlencode(q, doseq=True)}"

    if style == "page_number":
        return {"count": total, "next": link(offset + limit) if more else None,
                "previous": link(max(offset - limit, 0)) if offset else None, "results": items}  # fmt: skip
    if style == "offset_limit":
        return {"count": len(items), "data": items, "next": link(offset + limit) if more else None,
                "previous": link(max(offset - limit, 0)) if offset else None, "totalCount": total}  # fmt: skip
    return {"data": items, "count": len(items), "total": total, "isTruncated": more,
            "nextToken": str(offset + len(items)) if more else None}  # fmt: skip


def credentials(schemes: list[str], headers: dict[str, str], cookies: dict[str, str]) -> tuple[str, str] | None:
    """The first credential a dialect's schemes find: ("token" | "session", token) or ("basic", base64)."""
    auth = headers.get("authorization", "").strip()
    word, _, rest = auth.partition(" ")
    for scheme in schemes:
        if scheme == "bearer" and word.lower() == "bearer" and rest:
            return "token", rest.strip()
        if scheme == "token" and word.lower() in ("token", "bearer") and rest:
            return "token", rest.strip()
        if scheme == "basic" and word.lower() == "basic" and rest:
            return "basic", rest.strip()
        if scheme == "raw" and auth and not rest:
            return "token", auth
        if scheme == "session" and cookies.get("sessionid"):
            return "session", cookies["sessionid"]
    return None
