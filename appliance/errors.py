"""Typed errors: each carries a stable code, an HTTP status and a CLI exit status.

One shape everywhere: the CLI prints `error[code]: message`, the web API (later) renders
`{"error": {"code": ..., "message": ..., "details": {...}}}` from the same object.
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INVALID = 2
EXIT_RULE = 3


class ApplianceError(Exception):
    code = "error"
    http_status = 500
    exit_status = EXIT_FAILURE

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class InvalidInput(ApplianceError):
    """A request that can never succeed as written (bad field, bad value)."""

    code = "invalid_input"
    http_status = 400
    exit_status = EXIT_INVALID

    def __init__(self, message: str, field: str | None = None, **details: Any) -> None:
        if field is not None:
            details["field"] = field
        super().__init__(message, **details)


class InvalidQuantity(InvalidInput):
    code = "invalid_quantity"


class ConfigError(InvalidInput):
    code = "config_error"

    def __init__(self, errors: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(errors), errors=errors)
        self.errors = errors


class NotFound(ApplianceError):
    code = "not_found"
    http_status = 404
    exit_status = EXIT_INVALID


class UnknownSku(NotFound):
    code = "unknown_sku"

    def __init__(self, sku: str) -> None:
        super().__init__(f"unknown SKU {sku!r}", sku=sku)


class UnknownLocation(NotFound):
    code = "unknown_location"

    def __init__(self, location: str) -> None:
        super().__init__(f"unknown location {location!r}", location=location)


class UnknownTransfer(NotFound):
    code = "unknown_transfer"

    def __init__(self, transfer: str) -> None:
        super().__init__(f"unknown transfer {transfer!r}", transfer=transfer)


class UnknownMovement(NotFound):
    code = "unknown_movement"

    def __init__(self, movement_id: int) -> None:
        super().__init__(f"unknown movement {movement_id}", movement_id=movement_id)


class UnknownReservation(NotFound):
    code = "unknown_reservation"

    def __init__(self, reservation_id: int) -> None:
        super().__init__(f"unknown reservation {reservation_id}", reservation_id=reservation_id)


class UnknownUser(NotFound):
    code = "unknown_user"

    def __init__(self, login: str) -> None:
        super().__init__(f"unknown user {login!r}", login=login)


class RuleViolation(ApplianceError):
    """The request is well-formed but the ledger's rules refuse it in the current state."""

    code = "rule_violation"
    http_status = 409
    exit_status = EXIT_RULE


class InsufficientStock(RuleViolation):
    code = "insufficient_stock"

    def __init__(self, sku: str, location: str, requested: int, available: int, what: str = "available") -> None:
        super().__init__(
            f"insufficient stock: {sku} at {location} has {available} {what}, {requested} requested",
            sku=sku, location=location, requested=requested, available=available, rule=what,
        )
        self.available = available


class ForeignLocation(RuleViolation):
    code = "foreign_location"

    def __init__(self, location: str, owner: str, site: str) -> None:
        super().__init__(
            f"location {location} belongs to site {owner}; this box ({site}) writes only its own locations",
            location=location, owner=owner, site=site,
        )


class OpIdReused(RuleViolation):
    """The same idempotency key arrived with a different request: a client bug, never silently merged."""

    code = "op_id_reused"

    def __init__(self, op_id: str) -> None:
        super().__init__(f"op_id {op_id!r} was already used for a different request", op_id=op_id)


class NotReversible(RuleViolation):
    code = "not_reversible"


class TransferClosed(RuleViolation):
    code = "transfer_closed"


class ReservationClosed(RuleViolation):
    code = "reservation_closed"


class InconsistentState(ApplianceError):
    code = "inconsistent_state"


class Recovering(ApplianceError):
    """Writes wait while the agent pulls this site's own movements back from peers (restored backup)."""

    code = "recovering"
    http_status = 503
    exit_status = EXIT_FAILURE

    def __init__(self, site: str) -> None:
        super().__init__(f"site {site} is recovering its own movements from its peers; try again shortly "
                         "(`appliance sync status` shows progress)", site=site)
