"""The project's own exception types: every error a user can cause says what went wrong and where."""

from __future__ import annotations


class SegmintError(Exception):
    """Base of every error segmint raises on purpose; `where` points at the offending input."""

    status_code = 400
    code = "error"

    def __init__(self, message: str, *, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message

    def to_dict(self) -> dict[str, object]:
        """JSON body used by the API for this error."""
        body: dict[str, object] = {"error": self.code, "message": self.message}
        if self.where:
            body["where"] = self.where
        return body


class InvalidInput(SegmintError):
    """Input that cannot be accepted as given (bad JSON, wrong type, missing field)."""

    code = "invalid_input"


class PayloadTooLarge(SegmintError):
    """A message or batch over the size limits."""

    status_code = 413
    code = "payload_too_large"


class Unauthorized(SegmintError):
    """Missing or unknown credentials."""

    status_code = 401
    code = "unauthorized"


class Forbidden(SegmintError):
    """Known credentials that may not do this (e.g. a missing or wrong CSRF token)."""

    status_code = 403
    code = "forbidden"


class NotFound(SegmintError):
    """A named thing (workspace, key, segment, user) that does not exist."""

    status_code = 404
    code = "not_found"


class Conflict(SegmintError):
    """The request conflicts with existing state (duplicate name, held lock)."""

    status_code = 409
    code = "conflict"


class WorkspaceError(SegmintError):
    """The workspace folder is missing, malformed or held by another process."""

    code = "workspace_error"
