"""POST /movements: one movement or a batch, all or nothing, through the ledger's one write path.

The body is one movement (`{"op_id", "kind", "sku", ...}`, the fields of `ledger.requests.Move`) or a batch
(`{"op_id", "movements": [...]}`). Every field of every item is checked before the write lock is taken and
every problem is reported at once (`movements[2].qty`). Each kind needs its permission (KIND_PERMISSION).

`"kind": "move"` is a move within this site: a transfer_out whose transfer is received and closed in the same
transaction, as the station desk does for a relocation, so the goods are never shown "in transit" between two
shelves of one building.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _

from appliance.access.roles import KIND_PERMISSION, allowed
from appliance.errors import ApplianceError, InvalidInput
from appliance.ledger.requests import MAX_QTY, MOVE_FIELDS, POSTABLE_KINDS, Move, MovementRecord, PostResult
from appliance.ledger.service import apply_request, arrive_within_site
from appliance.webapp.api import bp
from appliance.webapp.api.payloads import MISSING, Fields, json_body, raise_if
from appliance.webapp.api.shapes import posted
from appliance.webapp.context import parts, principal, requires

LOCAL_MOVE = "move"
KINDS = POSTABLE_KINDS + (LOCAL_MOVE,)
LOCAL_MOVE_FIELDS = ("kind", "sku", "location", "to_location", "qty", "lot", "ref_type", "ref_id", "reason", "note")
MAX_BATCH = 500
TEXT_FIELDS = {"sku": 500, "location": 40, "to_location": 40, "lot": 64, "expiry": 10, "expires_at": 40,
               "ref_type": 500, "ref_id": 500, "reason": 500, "note": 500}


class KindForbidden(ApplianceError):
    code = "forbidden"
    http_status = 403

    def __init__(self, kind: str, permission: str, role: str) -> None:
        super().__init__(_("your role (%(role)s) may not post %(kind)s movements: that needs the %(permission)s "
                           "permission", role=role, kind=kind, permission=permission),
                         kind=kind, permission=permission)


def permission_of(kind: str) -> str:
    return LOCAL_MOVE if kind == LOCAL_MOVE else KIND_PERMISSION[kind]


def parse_move(data: Any, prefix: str, errors: dict[str, str]) -> tuple[str, Move] | None:
    """(kind as sent, the ledger's Move) for one item, or None after recording its problems in `errors`."""
    before = len(errors)
    fields = Fields(data, prefix, errors)
    if len(errors) > before:   # not an object: nothing more to say about its fields
        return None
    kind = fields.text("kind", required=True, max_len=20)
    if isinstance(kind, str) and kind not in KINDS:
        kind = fields.fail("kind", _("unknown movement kind %(kind)r; one of %(kinds)s", kind=kind,
                                     kinds=", ".join(KINDS)))
    fields.only(LOCAL_MOVE_FIELDS if kind == LOCAL_MOVE else MOVE_FIELDS)
    values: dict[str, Any] = {name: fields.text(name, nullable=True, default=None, max_len=length)
                              for name, length in TEXT_FIELDS.items() if name in fields.data}
    values["qty"] = fields.integer("qty", required=kind != "release", default=0, minimum=-MAX_QTY,
                                   maximum=MAX_QTY)
    values["close"] = fields.boolean("close", default=False)
    values["reservation_id"] = fields.integer("reservation_id", nullable=True, default=None, minimum=1)
    values["unit_cost"] = fields.integer("unit_cost", nullable=True, default=None, minimum=0)
    transfer = fields.data.get("transfer")
    if isinstance(transfer, int) and not isinstance(transfer, bool) and transfer > 0:
        values["transfer"] = str(transfer)   # a transfer's id works as well as its code
    elif "transfer" in fields.data:
        values["transfer"] = fields.text("transfer", nullable=True, default=None, max_len=40)
    if values.get("lot") is None:
        values["lot"] = ""
    if len(errors) > before or kind is MISSING or any(value is MISSING for value in values.values()):
        return None
    move = Move("transfer_out" if kind == LOCAL_MOVE else kind, **values)
    try:
        move.validate()
    except InvalidInput as exc:
        fields.fail(exc.details.get("field", "kind"), exc.message)
        return None
    return kind, move


def parse_request(body: Any) -> tuple[str | None, list[tuple[str, Move]], bool]:
    """(op_id, [(kind, move)], whether it was sent as a batch); raises one 400 for every problem."""
    top = Fields(body)
    batch = top.has("movements")
    if batch:
        top.only(("op_id", "movements"))
    op_id = top.op_id()
    errors = top.errors
    parsed: list[tuple[str, Move] | None] = []
    if not batch:
        parsed.append(parse_move({k: v for k, v in top.data.items() if k != "op_id"}, "", errors))
    elif not isinstance(body["movements"], list) or not 1 <= len(body["movements"]) <= MAX_BATCH:
        top.fail("movements", _("must be a list of 1-%(count)d movements", count=MAX_BATCH))
    else:
        parsed = [parse_move(item, f"movements[{index}]", errors) for index, item in enumerate(body["movements"])]
    raise_if(errors)
    return op_id, [item for item in parsed if item is not None], batch


def refused_kind(moves: list[tuple[str, Move]], role: str) -> str | None:
    """The first kind of movement in `moves` that `role` may not post, or None."""
    for kind in dict.fromkeys(kind for kind, _move in moves):
        if not allowed(role, permission_of(kind)):
            return kind
    return None


def check_permissions(moves: list[tuple[str, Move]]) -> None:
    kind = refused_kind(moves, principal().role)
    if kind is not None:
        raise KindForbidden(kind, permission_of(kind), principal().role)


def _located(exc: ApplianceError, index: int) -> None:
    """Say which item of a batch the ledger refused, and put a field error under that item's path."""
    exc.details.setdefault("index", index)
    field = exc.details.get("field")
    if isinstance(exc, InvalidInput) and field and not field.startswith("movements["):
        path = f"movements[{index}].{field}"
        exc.details["field"] = path
        exc.details["fields"] = {path: exc.message}


def submit(ledger, items: list[tuple[str, Move]], batch: bool, login: str, op_id: str | None) -> PostResult:
    """Post parsed items through the ledger's group commit: concurrent posts share one transaction and fsync
    (ledger/group_commit.py), which is the API's rate under load."""
    moves = [move for _kind, move in items]
    local = {index for index, (kind, _move) in enumerate(items) if kind == LOCAL_MOVE}

    def post(ops) -> PostResult:
        done = 0
        arrive = arrive_within_site(ops)

        def then(move: Move, records: list[MovementRecord]) -> list[MovementRecord]:
            nonlocal done
            extra = arrive(move, records) if done in local else []
            done += 1
            return extra

        try:
            return apply_request(ops, moves, then)
        except ApplianceError as exc:
            if batch:
                _located(exc, done)
            raise
    return ledger.submit(post, user=login, device="api", op_id=op_id)


@bp.post("/movements")
@requires("view")
def post_movements():
    # The common case (a token, a well-formed post the ledger accepts) is answered before Flask by
    # fast_post.FastPostLane with the same functions; whatever it declines comes here.
    op_id, items, batch = parse_request(json_body())
    check_permissions(items)
    result = submit(parts().ledger, items, batch, principal().login, op_id)
    return posted(result, op_id)
