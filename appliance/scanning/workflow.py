"""Station workflows: a pure state machine driven by scans (issue 4, DESIGN.md §1).

`step(session, seen, now)` takes the station's session and one resolved scan and returns the next session and
one `Action`: something to post (receive, ship, move, count, undo), something to hold (an item carried to a
destination or counted), something to look up, or just words. It reads no database and writes nothing; the
station desk (station.py) carries the action out in one ledger transaction and, when the ledger refuses it,
keeps the session as it was before the scan. So every scan ends in exactly one post or a refusal.

Modes: lookup (the resting mode), receive (free, against a purchase order, or a transfer arriving),
ship (free or for an order reference), move (put-away between locations; a destination on another site makes
it a transfer), transfer (the same, destination on another site only), count (a location: what is not
scanned is not there). Quantities: each scan is the units of what was scanned (a case GTIN is its pack, GS1
count AI 30/37 multiplies); a QTY-n code multiplies the next item.

Receiving against a purchase order: its number (the document barcode) opens it, if the desk finds it sent and
not yet complete, into its delivery location unless a location was scanned for free receiving just before; a
location scanned afterwards changes where the goods go. Each item is booked against the order's line of that
SKU; the desk refuses what is not on the order, and CMD-RECEIVE leaves the order to receive it freely.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

MODES = ("lookup", "receive", "ship", "move", "transfer", "count")
MODE_COMMANDS = {"lookup": "lookup", "receive": "receive", "ship": "ship", "pick": "ship", "move": "move",
                 "transfer": "transfer", "count": "count"}
HOLDING_MODES = ("move", "transfer", "count")   # modes that collect items before one post


@dataclass(frozen=True)
class Line:
    sku: str
    qty: int
    lot: str = ""
    expiry: str | None = None

    def text(self) -> str:
        return f"{self.qty} × {self.sku}" + (f" lot {self.lot}" if self.lot else "")


@dataclass(frozen=True)
class Session:
    """Everything a station remembers between scans; stored as JSON, so it survives a power cut mid-count."""
    mode: str = "lookup"
    location: str | None = None        # receive: into; ship/move/transfer: from; count: the counted location
    ref_type: str | None = None        # purchase_order, order, transfer
    ref_id: str | None = None
    qty: int | None = None             # a QTY-n code waiting for the next item
    lines: tuple[Line, ...] = ()       # items carried (move/transfer) or counted (count), not yet posted
    user: str | None = None            # from the last badge scanned
    last: dict[str, Any] | None = None  # what CMD-UNDO takes back (set by the desk after a post)
    touched: float = 0.0               # epoch seconds of the last scan
    # A purchase order being received: its lines still to come, (sku, qty), as the desk read them at this
    # station's last scan of the order (another station's receipts show here at the next one). For the prompt.
    expected: tuple[tuple[str, int], ...] = ()
    print_next: bool = False           # CMD-PRINT: the next item or location scanned gets a label, nothing else

    @property
    def busy(self) -> bool:
        return (self.mode != "lookup" or bool(self.lines) or self.qty is not None or self.user is not None
                or self.print_next)

    def to_json(self) -> dict[str, Any]:
        # By hand: dataclasses.asdict deep-copies `last` and cost a third of a scan's Python time.
        return {"mode": self.mode, "location": self.location, "ref_type": self.ref_type, "ref_id": self.ref_id,
                "qty": self.qty, "lines": [[x.sku, x.qty, x.lot, x.expiry] for x in self.lines],
                "user": self.user, "last": self.last, "touched": self.touched,
                "expected": [[sku, qty] for sku, qty in self.expected], "print_next": self.print_next}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Session":
        data = dict(data)
        data["lines"] = tuple(Line(*line) for line in data.get("lines", ()))
        data["expected"] = tuple((sku, qty) for sku, qty in data.get("expected", ()))
        return cls(**data)


@dataclass(frozen=True)
class Seen:
    """A scan as the workflow needs it: interpreted and resolved against this box's catalog and locations."""
    kind: str                          # item, location, document, command, quantity, badge, unknown, invalid
    text: str = ""                     # what was scanned, control characters visible
    sku: str | None = None
    units: int = 1                     # what one scan of it counts for (pack size × GS1 count)
    lot: str = ""
    expiry: str | None = None
    location: str | None = None
    site: str | None = None            # owner of the location
    document: str | None = None
    document_type: str | None = None
    command: str | None = None
    quantity: int | None = None
    login: str | None = None
    error: str = ""                    # invalid: why
    code_like: bool = False            # an unknown GTIN or location code of ours, not free text


# Actions: what the desk does with the ledger. Field names are what the desk reads.

@dataclass(frozen=True)
class Say:
    level: str
    message: str


@dataclass(frozen=True)
class Receive:
    line: Line
    location: str
    ref_type: str | None
    ref_id: str | None


@dataclass(frozen=True)
class Ship:
    line: Line
    location: str
    ref_id: str | None


@dataclass(frozen=True)
class TransferIn:
    line: Line
    transfer: str


@dataclass(frozen=True)
class OpenTransfer:
    transfer: str


@dataclass(frozen=True)
class OpenOrder:
    """Check a purchase order for receiving and read its lines; `location`: where to receive, None for the
    order's delivery location."""
    number: str
    location: str | None


@dataclass(frozen=True)
class Hold:
    """Keep `line` in the session (move/transfer: from `location`; count: at `location`) once it checks out."""
    line: Line
    location: str
    mode: str
    held: tuple[Line, ...]             # what the session already holds


@dataclass(frozen=True)
class Relocate:
    lines: tuple[Line, ...]
    source: str
    destination: str
    foreign: bool                      # the destination is another site's: a transfer that arrives later


@dataclass(frozen=True)
class PostCount:
    location: str
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class Undo:
    last: dict[str, Any]
    order: str | None = None           # the purchase order the session is receiving, to refresh its lines


@dataclass(frozen=True)
class Lookup:
    what: str                          # sku, location, transfer, purchase_order
    key: str


@dataclass(frozen=True)
class Login:
    login: str


@dataclass(frozen=True)
class PrintLabel:
    """Queue a label (the desk picks the station's printer): `label` variant or location, `key` its SKU or code."""
    label: str
    key: str
    copies: int


Action = (Say | Receive | Ship | TransferIn | OpenTransfer | OpenOrder | Hold | Relocate | PostCount | Undo | Lookup
          | Login | PrintLabel)


@dataclass(frozen=True)
class Step:
    session: Session                   # the session if the action succeeds
    action: Action
    notes: tuple[str, ...] = field(default=())   # said before the action's own message (e.g. a timeout)


def step(session: Session, seen: Seen, now: float, *, site: str, idle_timeout_s: float) -> Step:
    notes: tuple[str, ...] = ()
    if session.touched and now - session.touched > idle_timeout_s and session.busy:
        notes = (timed_out(session, now - session.touched),)
        session = Session()
    session = replace(session, touched=now)
    result = _dispatch(session, seen, site)
    return replace(result, notes=notes + result.notes)


def timed_out(session: Session, idle_s: float) -> str:
    dropped = f"; dropped {len(session.lines)} unposted item(s)" if session.lines else ""
    return f"Session timed out after {round(idle_s / 60) or 1} min idle{dropped}"


def _dispatch(s: Session, seen: Seen, site: str) -> Step:
    kind = seen.kind
    if kind == "invalid":
        return Step(s, Say("error", seen.error or f"Cannot read {seen.text}"))
    if kind == "unknown":
        if s.mode == "ship" and not seen.code_like and s.ref_id is None:
            # A shop's order number printed as Code 128 (free text that is no item and no location of ours).
            return Step(replace(s, ref_type="order", ref_id=seen.text),
                        Say("ok", f"Order {seen.text}: scan the items" if s.location else
                            f"Order {seen.text}: scan the location to ship from"))
        return Step(s, Say("error", f"Unknown barcode {seen.text}: kept in the scan log to be linked"))
    if kind == "badge":
        return Step(replace(s, user=seen.login), Login(seen.login))
    if kind == "quantity":
        return Step(replace(s, qty=seen.quantity), Say("ok", f"Next item × {seen.quantity}"))
    if kind == "command":
        return _command(s, seen.command)
    if kind == "document":
        return _document(s, seen)
    if s.print_next and kind in ("item", "location"):
        # Printing interrupts nothing: the mode, the location and anything held stay as they were.
        label, key = ("variant", seen.sku) if kind == "item" else ("location", seen.location)
        return Step(replace(s, print_next=False, qty=None), PrintLabel(label, key, s.qty or 1))
    if kind == "location":
        return _location(s, seen, site)
    if kind == "item":
        return _item(s, seen)
    return Step(s, Say("error", f"Cannot use {seen.text} here"))


def _fresh(s: Session, mode: str) -> Session:
    """A new task in `mode`, keeping who is scanning and what can still be undone."""
    return Session(mode=mode, user=s.user, last=s.last, touched=s.touched)


def _pending(s: Session) -> str:
    where = f" at {s.location}" if s.location else ""
    if s.mode == "count":
        return f"{len(s.lines)} counted item(s){where} not posted: CMD-DONE posts the count, CMD-CANCEL drops it"
    return (f"{len(s.lines)} item(s) from {s.location} wait for their destination: scan it, or CMD-CANCEL "
            "to drop them")


def _command(s: Session, command: str) -> Step:
    if command in MODE_COMMANDS:
        mode = MODE_COMMANDS[command]
        if s.lines and mode != s.mode:
            return Step(s, Say("error", _pending(s)))
        if mode == "receive" and s.ref_type == "purchase_order":
            # The way out for goods that are not on the order: receive them freely, at the same place.
            free = replace(_fresh(s, "receive"), location=s.location)
            return Step(free, Say("ok", f"Receive without an order into {s.location}" if s.location else "Receive"))
        if mode == s.mode and mode != "lookup":
            return Step(s, Say("ok", prompt(s)))
        return Step(_fresh(s, mode), Say("ok", _TITLES[mode]))
    if command == "done":
        if s.mode == "count" and s.location:
            return Step(_fresh(s, "count"), PostCount(s.location, totals(s.lines)))
        if s.lines:
            return Step(s, Say("error", _pending(s)))
        if s.ref_type in ("transfer", "purchase_order"):
            return Step(_fresh(s, "lookup"), Lookup(s.ref_type, s.ref_id))
        return Step(_fresh(s, "lookup"), Say("ok", "Done"))
    if command == "cancel":
        if s.lines:
            return Step(_fresh(s, "lookup"), Say("warning", f"Cancelled: dropped {len(s.lines)} unposted item(s)"))
        return Step(_fresh(s, "lookup"), Say("ok", "Cancelled"))
    if command == "undo":
        if s.qty is not None:
            return Step(replace(s, qty=None), Say("ok", f"Quantity × {s.qty} taken back"))
        if s.lines:
            return Step(replace(s, lines=s.lines[:-1]), Say("ok", f"Took back {s.lines[-1].text()}"))
        if s.last:
            return Step(replace(s, last=None), Undo(s.last, s.ref_id if s.ref_type == "purchase_order" else None))
        return Step(s, Say("warning", "Nothing to undo"))
    if command == "print":
        if s.print_next:
            return Step(replace(s, print_next=False), Say("ok", "No label printed"))
        return Step(replace(s, print_next=True), Say("ok", "Print: scan the item or location to label"))
    return Step(s, Say("error", f"CMD-{command.upper()} is not a station command"))


def _document(s: Session, seen: Seen) -> Step:
    if seen.document_type == "transfer":
        if s.lines:
            return Step(s, Say("error", _pending(s)))
        new = replace(_fresh(s, "receive"), ref_type="transfer", ref_id=seen.document)
        return Step(new, OpenTransfer(seen.document))
    if seen.document_type == "purchase_order":
        if s.lines:
            return Step(s, Say("error", _pending(s)))
        # A location scanned for free receiving just before (or for this same order) is where the worker stands;
        # otherwise the order's delivery location (the desk fills it in), not where an earlier order went.
        same = s.ref_type is None or (s.ref_type == "purchase_order" and s.ref_id == seen.document)
        keep = s.location if s.mode == "receive" and same else None
        new = replace(_fresh(s, "receive"), ref_type="purchase_order", ref_id=seen.document, location=keep)
        return Step(new, OpenOrder(seen.document, keep))
    return Step(s, Say("warning", f"{seen.document}: count documents are not supported yet; "
                                  "scan CMD-COUNT, then the location"))


def _location(s: Session, seen: Seen, site: str) -> Step:
    code, owner = seen.location, seen.site
    own = owner == site
    if s.mode == "lookup":
        return Step(s, Lookup("location", code))
    if s.mode in ("move", "transfer") and s.lines:
        if code == s.location:
            return Step(s, Say("error", f"{code} is where the items come from: scan the destination"))
        if s.mode == "transfer" and own:
            return Step(s, Say("error", f"{code} is on this site: a transfer goes to another site's location "
                                        "(CMD-MOVE moves within the site)"))
        return Step(replace(s, lines=()), Relocate(totals(s.lines), s.location, code, foreign=not own))
    if not own:
        return Step(s, Say("error", f"{code} belongs to site {owner}: this box books only its own locations"))
    if s.mode == "receive" and s.ref_type == "transfer":
        return Step(s, Say("warning", f"Transfer {s.ref_id} is booked into its destination; {prompt(s)}"))
    if s.mode == "count" and s.lines and code != s.location:
        return Step(s, Say("error", _pending(s)))
    new = replace(s, location=code, lines=() if s.mode == "count" and code != s.location else s.lines)
    if s.mode == "receive" and s.ref_type == "purchase_order":
        return Step(new, Say("ok", f"Receiving {s.ref_id} into {code}"))
    return Step(new, Say("ok", _AT[s.mode].format(code)))


_AT = {"receive": "Receiving into {}", "ship": "Shipping from {}", "move": "Taking from {}",
       "transfer": "Sending from {}", "count": "Counting {}"}
_TITLES = {"lookup": "Lookup", "receive": "Receive", "ship": "Ship", "move": "Move",
           "transfer": "Transfer to another site", "count": "Count"}


def _item(s: Session, seen: Seen) -> Step:
    line = Line(seen.sku, seen.units * (s.qty or 1), seen.lot or "", seen.expiry)
    used = replace(s, qty=None)
    if s.mode == "lookup":
        return Step(used, Lookup("sku", seen.sku))
    if s.mode == "receive" and s.ref_type == "transfer":
        return Step(used, TransferIn(line, s.ref_id))
    if not s.location:
        return Step(s, Say("error", f"{prompt(s)} first"))
    if s.mode == "receive":
        return Step(used, Receive(line, s.location, s.ref_type, s.ref_id))
    if s.mode == "ship":
        return Step(used, Ship(line, s.location, s.ref_id))
    # One line per scan, so that CMD-UNDO takes back exactly the last one; totals() adds them up.
    return Step(replace(used, lines=s.lines + (line,)), Hold(line, s.location, s.mode, s.lines))


def totals(lines: tuple[Line, ...]) -> tuple[Line, ...]:
    """Lines added up per SKU and lot, in the order first scanned; the latest expiry seen wins."""
    merged: dict[tuple[str, str], Line] = {}
    for line in lines:
        key = (line.sku, line.lot)
        before = merged.get(key)
        merged[key] = line if before is None else replace(before, qty=before.qty + line.qty,
                                                           expiry=line.expiry or before.expiry)
    return tuple(merged.values())


def prompt(s: Session) -> str:
    """What the station expects next, shown under every message."""
    if s.print_next:
        return "Scan the item or location to print its label (CMD-PRINT again: no label)"
    where = s.location
    if s.mode == "lookup":
        return "Scan anything to see where it is, or a command"
    if s.mode == "receive":
        if s.ref_type == "transfer":
            return f"Scan the items of transfer {s.ref_id}, then CMD-DONE"
        if s.ref_type == "purchase_order" and where:
            return f"Scan the items of {s.ref_id} to receive into {where}; {still_expected(s.expected)}"
        return f"Scan the items to receive into {where}" if where else "Scan the receiving location"
    if s.mode == "ship":
        return f"Scan the items to ship from {where}" if where else "Scan the location to ship from"
    if s.mode in ("move", "transfer"):
        if not where:
            return "Scan the location to move from"
        if not s.lines:
            return f"Scan the items to take from {where}"
        return f"Scan more items, or the destination ({len(s.lines)} item(s) held)"
    if s.mode == "count":
        return f"Scan everything at {where}, then CMD-DONE" if where else "Scan the location to count"
    return ""


EXPECTED_SHOWN = 6   # lines of an order named in the prompt; the order's page and `appliance po show` list all


def still_expected(expected: tuple[tuple[str, int], ...]) -> str:
    if not expected:
        return "every line is in: CMD-DONE"
    shown = ", ".join(f"{qty} × {sku}" for sku, qty in expected[:EXPECTED_SHOWN])
    more = f" and {len(expected) - EXPECTED_SHOWN} more line(s)" if len(expected) > EXPECTED_SHOWN else ""
    return f"still to come: {shown}{more}"
