"""Typed ARM errors: each carries the HTTP status and ARM error code it maps to.

Bodies follow ARM's shape: ``{"error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations


class ArmError(Exception):
    """An error the emulator answers with an ARM error body."""

    status = 400
    code = "BadRequest"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def body(self) -> dict:
        """The JSON error body ARM returns."""
        return {"error": {"code": self.code, "message": self.message}}


class InvalidParameter(ArmError):
    status = 400
    code = "InvalidParameter"


class MissingApiVersion(ArmError):
    status = 400
    code = "MissingApiVersionParameter"


class InvalidRequestContent(ArmError):
    status = 400
    code = "InvalidRequestContent"


class ResourceNotFound(ArmError):
    status = 404
    code = "ResourceNotFound"


class ParentResourceNotFound(ArmError):
    status = 404
    code = "ParentResourceNotFound"


class Conflict(ArmError):
    status = 409
    code = "Conflict"


class ScopeLocked(ArmError):
    status = 409
    code = "ScopeLocked"


class PreconditionFailed(ArmError):
    status = 412
    code = "PreconditionFailed"


class UnknownRoute(ArmError):
    """No route matches: the emulator does not pretend to know an API it does not model."""

    status = 400
    code = "NoRegisteredProviderFound"


class Throttled(ArmError):
    status = 429
    code = "TooManyRequests"


class InternalServerError(ArmError):
    status = 500
    code = "InternalServerError"


class ServiceUnavailable(ArmError):
    status = 503
    code = "ServiceUnavailable"
