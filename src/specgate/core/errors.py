"""Errors a library user or a handler can see; the server turns them into catalogue responses."""

from __future__ import annotations


class SpecgateError(Exception):
    """Base of specgate's own errors."""


class EndpointNotFound(SpecgateError):
    """No such ``service.action``, or the pin is below the action's first version."""

    def __init__(self, endpoint: str, version: str):
        self.endpoint, self.version = endpoint, version
        super().__init__(f"unable to find endpoint for name {endpoint} and version {version}")


class RequestValidationError(SpecgateError):
    """A request that breaks its schema. ``path`` names the offending field (``"execution.queue"``,
    ``"tags[2]"``; empty for the body itself), ``keyword`` the JSON Schema rule it broke."""

    def __init__(self, path: str, message: str, keyword: str = ""):
        self.path, self.message, self.keyword = path, message, keyword
        super().__init__(message)


class ErrorCode:
    """One catalogue entry: HTTP status, subcode, stable name and base message."""

    __slots__ = ("status", "subcode", "name", "text")

    def __init__(self, status: int, subcode: int, name: str, text: str):
        self.status, self.subcode, self.name, self.text = status, subcode, name, text

    def __repr__(self) -> str:
        return f"ErrorCode({self.status}, {self.subcode}, {self.name!r})"


def _render(value: object) -> str:
    if isinstance(value, (list, tuple, set)):
        return "(" + ", ".join(str(v) for v in value) + ")"
    return str(value)


class ApiError(SpecgateError):
    """The one error type handlers raise: a catalogue code, an optional detail and keyword data.

    The message follows ClearML's shape: ``Base text (detail): key=value, key=(a, b)``; ``text``
    replaces the base text where ClearML words a framework error in full ("Invalid request path /x").
    """

    def __init__(self, code: ErrorCode, detail: str = "", *, text: str | None = None, **data: object):
        self.code, self.detail, self.data = code, detail, data
        text = text or code.text[:1].upper() + code.text[1:]
        if detail:
            text += f" ({detail})"
        self.summary = text  # the message without the key=value data (REST dialects show it on its own)
        if data:
            text += ": " + ", ".join(f"{k}={_render(v)}" for k, v in data.items())
        self.message = text
        super().__init__(text)
