"""What the API answers with: rows and ledger records as JSON objects, cost fields only for who may see costs.

Costs (a variant's `cost_price`, a movement's `unit_cost`) are removed from the object, not nulled, for roles
without `see_costs`, so "absent" means "not yours to see" and null keeps meaning "not known".
"""

from __future__ import annotations

from typing import Any

from flask import jsonify

from appliance.ledger.requests import RECORD_FIELDS, MovementRecord, PostResult
from appliance.webapp.api.payloads import DuplicateOp
from appliance.webapp.context import can

_PUBLIC_RECORD_FIELDS = tuple(name for name in RECORD_FIELDS if name != "unit_cost")


def costs_visible() -> bool:
    return can("see_costs")


def movement_json(record: MovementRecord, costs: bool) -> dict[str, Any]:
    # getattr over a fixed tuple: dataclasses.asdict deep-copies and costs more than the rest of a response.
    return {name: getattr(record, name) for name in (RECORD_FIELDS if costs else _PUBLIC_RECORD_FIELDS)}


def movements_json(records, costs: bool | None = None) -> list[dict[str, Any]]:
    costs = costs_visible() if costs is None else costs
    return [movement_json(record, costs) for record in records]


def posted(result: PostResult, op_id: str | None, **extra: Any):
    """201 with what was written; a replay (same op_id, same request) is a 409 carrying the earlier movements."""
    movements = movements_json(result.movements)
    if result.replayed:
        raise DuplicateOp(op_id or "", movements)
    response = jsonify({**extra, "movements": movements, "replayed": False})
    response.status_code = 201
    return response


def row_dict(columns: tuple[str, ...], row, *, flags: tuple[str, ...] = ()) -> dict[str, Any]:
    """A SQL row as a dict; SQLite returns booleans as 0/1, `flags` names the columns that are booleans."""
    out = dict(zip(columns, row))
    for name in flags:
        out[name] = bool(out[name])
    return out


def without_costs(item: dict[str, Any], costs: bool, *names: str) -> dict[str, Any]:
    if not costs:
        for name in names or ("cost_price",):
            item.pop(name, None)
    return item
