"""The one error type the runtime raises for API failures.

Callers branch on the HTTP status (404, 409, 410, 422 …), never on the transport library's exception
classes, so lightkube / httpx2 errors are converted at the client boundary.
"""

from __future__ import annotations

import json
from typing import Any

#: the reason of a write refused before it was sent (rbg.runtime.fence)
FENCED = "Fenced"


class ApiError(Exception):
    """An error answer from the Kubernetes API server (or a transport failure, with status 0)."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        causes: tuple[str, ...] = (),
        fields: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.causes = causes  # Status.details.causes[].type
        self.fields = fields  # Status.details.causes[] as (field, message), for a 422's field errors

    @classmethod
    def from_status(cls, status: dict[str, Any], default_code: int = 500) -> ApiError:
        """From a `meta/v1 Status` body (an error response or a watch ERROR event)."""
        return cls(
            int(status.get("code") or default_code),
            status.get("reason", ""),
            status.get("message", ""),
            _causes(status),
            _fields(status),
        )

    @classmethod
    def from_body(cls, code: int, body: bytes) -> ApiError:
        try:
            status = json.loads(body)
        except ValueError:
            status = None
        if isinstance(status, dict) and status.get("kind") == "Status":
            return cls(
                code, status.get("reason", ""), status.get("message", ""), _causes(status), _fields(status)
            )
        return cls(code, "", body[:500].decode(errors="replace"))

    @property
    def namespace_terminating(self) -> bool:
        """403 because the namespace is being deleted: nothing more may be created in it."""
        # a create carries the NamespaceTerminating cause; a server-side apply only the message
        return self.status == 403 and (
            "NamespaceTerminating" in self.causes or "because it is being terminated" in self.message
        )

    @property
    def invalid(self) -> bool:
        """400/422: the object (or the request) is refused as it is; sending it again will not help."""
        return self.status in (400, 422)

    @property
    def fenced(self) -> bool:
        """Not sent: this replica may no longer write as the leader (rbg.runtime.fence, D47)."""
        return self.status == 0 and self.reason == FENCED

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def gone(self) -> bool:
        """410: the resourceVersion is too old (compacted) — the watcher must re-list."""
        return self.status == 410


def _causes(status: dict[str, Any]) -> tuple[str, ...]:
    details = status.get("details") or {}
    return tuple(str(c.get("type", "")) for c in details.get("causes") or [] if isinstance(c, dict))


def _fields(status: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    details = status.get("details") or {}
    return tuple(
        (str(c.get("field", "")), str(c.get("message", "")))
        for c in details.get("causes") or []
        if isinstance(c, dict) and c.get("field")
    )
