"""specgate: a schema-driven API gateway compiled from versioned HOCON specs.

Library use::

    import specgate
    data = specgate.validate_request("tasks.create", "2.20", {"name": "t", "type": "training"})

``version`` is any client pin; it resolves to the action's highest version key at or below it.
"""

from __future__ import annotations

from typing import Any

from .core.errors import EndpointNotFound, RequestValidationError, SpecgateError

__all__ = ["EndpointNotFound", "RequestValidationError", "SpecgateError", "__version__", "validate_request"]
__version__ = "0.1.0"

_validators = None


def validate_request(endpoint: str, version: str, payload: Any) -> dict[str, Any]:
    """Return ``payload`` with nulls dropped and defaults applied, or raise RequestValidationError
    (whose ``.path`` and ``.message`` name the offending field) or EndpointNotFound."""
    global _validators
    if _validators is None:
        from .runtime.tables import load
        from .runtime.validate import Validators

        _validators = Validators(load())
    return _validators.validate_request(endpoint, version, payload)
