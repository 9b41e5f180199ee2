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
