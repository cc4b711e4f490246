"""Random sequences of valid and invalid ledger operations against a small in-memory model of the rules.

After every step: the ledger refused exactly what the model refused (same error class), the stock table equals
the model's, nothing is negative, available stock went below zero only through adjust or count, and `check()`
is empty. At the end, `stock_as_of` at each step's timestamp equals the stock recorded after that step.
"""

from __future__ import annotations

from collections import defaultdict

import hypothesis.strategies as st
from hypothesis import event, given, settings
from workers import SITE_KEY, FakeClock, populate

from appliance.errors import (ForeignLocation, InsufficientStock, InvalidInput, InvalidQuantity, NotReversible,
                              ReservationClosed, TransferClosed, UnknownLocation, UnknownMovement,
                              UnknownReservation, UnknownSku, UnknownTransfer)
from appliance.ledger import queries
from appliance.ledger.check import check
from appliance.ledger.db import open_db
from appliance.ledger.requests import Move
from appliance.ledger.service import Ledger

A1, A2, WAW = "BER-A-01", "BER-A-02", "WAW-A-01"
OWN = (A1, A2)
EXPIRY = {"": None, "L1": "2026-05-01", "L2": "2026-04-01"}
FEFO = ("L2", "L1", "")  # the lots in first-expiry-first-out order (no expiry last)
KNOWN_SKUS = ("DOG-5", "CAT-2")
REVERSIBLE_KINDS = ("receive", "ship", "adjust", "damage", "return_in", "return_out", "count")

skus = st.sampled_from(KNOWN_SKUS * 4 + ("NOPE-1",))
locations = st.sampled_from(OWN * 4 + (WAW, "BER-Z-99"))
lots = st.sampled_from(("", "", "L1", "L2"))
qtys = st.sampled_from(tuple(range(1, 9)) * 3 + (0, -1))  # mostly valid
picks = st.integers(0, 50)

operations = st.one_of(
    st.tuples(st.sampled_from(("receive", "return_in")), skus, locations, qtys, lots),
    st.tuples(st.sampled_from(("ship", "damage", "return_out")), skus, locations, qtys, lots),
    st.tuples(st.just("adjust"), skus, locations, st.integers(-8, 6), lots),
    st.tuples(st.just("count"), skus, locations, qtys, lots),
    st.tuples(st.just("reserve"), skus, locations, qtys, lots),
    st.tuples(st.just("release"), picks, st.integers(0, 5)),
    st.tuples(st.just("consume"), picks, st.integers(0, 5)),
    st.tuples(st.just("transfer_out"), skus, locations, st.sampled_from((A1, A2, WAW)), qtys),
    st.tuples(st.just("transfer_in"), picks, st.integers(-1, 6), st.booleans()),
    st.tuples(st.just("reverse"), picks),
)


class Model:
    """What the stock should be: rows (sku, location, lot) -> [on hand, reserved, in transit]."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        self.reservations: list[dict] = []   # in id order: sku, loc, lot, left, status
        self.transfers: list[dict] = []      # in id order: sku, dest, legs [[lot, left]] in the order sent, status
        self.movements: list = []            # MovementRecords written, to pick reversals from
        self.reversed: set[int] = set()

    def lots(self, sku, loc):
        return [(lot, self.rows[(sku, loc, lot)]) for lot in FEFO if (sku, loc, lot) in self.rows]

    def totals(self, sku, loc) -> tuple[int, int]:
        rows = [r for _, r in self.lots(sku, loc)]
        return sum(r[0] for r in rows), sum(r[1] for r in rows)

    def available(self, sku, loc) -> int:
        on_hand, reserved = self.totals(sku, loc)
        return on_hand - reserved

    def nonzero(self) -> dict:
        return {k: tuple(v) for k, v in self.rows.items() if any(v)}

    # --- rule pieces, raising what the ledger raises --------------------------------------------------------

    @staticmethod
    def resolve(sku, loc, own=True):
        if sku not in KNOWN_SKUS:
            raise UnknownSku(sku)
        if loc not in (A1, A2, WAW):
            raise UnknownLocation(loc)
        if own and loc == WAW:
            raise ForeignLocation(loc, "WAW", "BER")

    def allocate(self, sku, loc, qty, lot, keep_lot_reservations=True, own_reserved=0) -> list[tuple[str, int]]:
        """The named lot, else first expiry first out. Units a lot's reservations hold stay in the lot (except
        for `own_reserved`, the caller's own reservation there); reservations without a lot are location-wide."""
        def free(row_lot, row):
            if not keep_lot_reservations or not row_lot:
                return row[0]
            return min(row[0] - row[1] + (own_reserved if row_lot == lot else 0), row[0])

        if lot:
            if (sku, loc, lot) not in self.rows or free(lot, self.rows[(sku, loc, lot)]) < qty:
                raise InsufficientStock(sku, loc, qty, 0)
            return [(lot, qty)]
        takes, left = [], qty
        for row_lot, row in self.lots(sku, loc):
            take = min(free(row_lot, row), left)
            if take > 0:
                takes.append((row_lot, take))
                left -= take
        if left:
            raise InsufficientStock(sku, loc, qty, 0)
        return takes

    def take_available(self, sku, loc, qty, lot):
        if self.available(sku, loc) < qty:
            raise InsufficientStock(sku, loc, qty, 0)
        return self.allocate(sku, loc, qty, lot)

    @staticmethod
    def positive(qty):
        if qty <= 0:
            raise InvalidQuantity("", field="qty")

    # --- one operation: check the rules the way the ledger does, then change the model ---------------------

    def expect(self, op) -> None:
        """Raise the error the ledger should raise for `op`, or apply its effect to the model."""
        kind = op[0]
        if kind in ("receive", "return_in"):
            _, sku, loc, qty, lot = op
            self.positive(qty)
            self.resolve(sku, loc)
            self.rows[(sku, loc, lot)][0] += qty
        elif kind in ("ship", "damage", "return_out"):
            _, sku, loc, qty, lot = op
            self.positive(qty)
            self.resolve(sku, loc)
            for take_lot, take in self.take_available(sku, loc, qty, lot):
                self.rows[(sku, loc, take_lot)][0] -= take
        elif kind == "adjust":
            _, sku, loc, qty, lot = op
            if qty == 0:
                raise InvalidQuantity("", field="qty")
            self.resolve(sku, loc)
            if qty > 0:
                self.rows[(sku, loc, lot)][0] += qty
            else:  # stock that is gone is gone, even when promised
                for take_lot, take in self.allocate(sku, loc, -qty, lot, keep_lot_reservations=False):
                    self.rows[(sku, loc, take_lot)][0] -= take
        elif kind == "count":
            _, sku, loc, qty, lot = op
            if qty < 0:
                raise InvalidQuantity("", field="qty")
            self.resolve(sku, loc)
            if not lot and any(row_lot and row[0] > 0 for row_lot, row in self.lots(sku, loc)):
                raise InvalidInput("count each lot", field="lot")
            self.rows[(sku, loc, lot)][0] = qty
        elif kind == "reserve":
            _, sku, loc, qty, lot = op
            self.positive(qty)
            self.resolve(sku, loc)
            if self.available(sku, loc) < qty:
                raise InsufficientStock(sku, loc, qty, 0)
            if lot:
                self.allocate(sku, loc, qty, lot)  # the lot itself must have the units free
            self.rows[(sku, loc, lot)][1] += qty
            self.reservations.append({"sku": sku, "loc": loc, "lot": lot, "left": qty, "status": "held"})
        elif kind in ("release", "consume"):
            _, pick, qty = op
            if kind == "consume":
                self.positive(qty)
            res = self.reservation(pick)
            qty = qty or res["left"]
            if qty > res["left"]:
                raise InsufficientStock(res["sku"], res["loc"], qty, res["left"])
            if kind == "consume":
                for take_lot, take in self.allocate(res["sku"], res["loc"], qty, res["lot"], own_reserved=qty):
                    self.rows[(res["sku"], res["loc"], take_lot)][0] -= take
            self.rows[(res["sku"], res["loc"], res["lot"])][1] -= qty
            res["left"] -= qty
            if not res["left"]:
                res["status"] = "consumed" if kind == "consume" else "released"
        elif kind == "transfer_out":
            _, sku, src, dest, qty = op
            self.positive(qty)
            if dest == src:
                raise InvalidInput("same", field="to_location")
            self.resolve(sku, src)
            self.resolve(sku, dest, own=False)
            takes = self.take_available(sku, src, qty, "")
            for take_lot, take in takes:
                self.rows[(sku, src, take_lot)][0] -= take
                self.rows[(sku, dest, take_lot)][2] += take
            self.transfers.append({"sku": sku, "dest": dest, "legs": [list(t) for t in takes], "status": "open"})
        elif kind == "transfer_in":
            _, pick, qty, close = op
            if qty < 0 or (qty == 0 and not close):
                raise InvalidQuantity("", field="qty")
            if not self.transfers:
                raise UnknownTransfer("none")
            transfer = self.transfers[pick % len(self.transfers)]
            if transfer["status"] != "open":
                raise TransferClosed("closed")
            sku, dest = transfer["sku"], transfer["dest"]
            if dest == WAW:
                raise ForeignLocation(dest, "WAW", "BER")
            legs = [leg for leg in transfer["legs"] if leg[1] > 0]
            left = qty
            for leg in legs:
                take = min(left, leg[1])
                self.rows[(sku, dest, leg[0])][0] += take
                self.rows[(sku, dest, leg[0])][2] -= take
                leg[1] -= take
                left -= take
            if left:
                self.rows[(sku, dest, legs[-1][0])][0] += left
            if close:
                for leg in legs:
                    self.rows[(sku, dest, leg[0])][2] -= leg[1]
                    leg[1] = 0
            if not any(leg[1] for leg in transfer["legs"]):
                transfer["status"] = "done"
        elif kind == "reverse":
            if not self.movements:
                raise UnknownMovement(999)
            m = self.movements[op[1] % len(self.movements)]
            if m.kind not in REVERSIBLE_KINDS or m.d_reserved or m.d_in_transit or m.id in self.reversed:
                raise NotReversible("no")
            if m.d_on_hand > 0:  # taking units back: only units that are free in their lot and location
                row = self.rows[(m.sku, m.location, m.lot)]
                if (row[0] - row[1] if m.lot else row[0]) < m.d_on_hand or \
                        self.available(m.sku, m.location) < m.d_on_hand:
                    raise InsufficientStock(m.sku, m.location, m.d_on_hand, 0)
            self.rows[(m.sku, m.location, m.lot)][0] -= m.d_on_hand
            self.reversed.add(m.id)
        else:  # pragma: no cover
            raise AssertionError(kind)

    def reservation(self, pick) -> dict:
        if not self.reservations:
            raise UnknownReservation(999)
        res = self.reservations[pick % len(self.reservations)]
        if res["status"] != "held":
            raise ReservationClosed("closed")
        return res

    # --- the same operation on the ledger -------------------------------------------------------------------

    def run(self, ledger, op):
        kind = op[0]
        if kind in ("receive", "return_in"):
            _, sku, loc, qty, lot = op
            return ledger.post(Move(kind, sku=sku, location=loc, qty=qty, lot=lot, expiry=EXPIRY[lot]))
        if kind in ("adjust", "count"):
            # Every lot keeps one expiry wherever it is created, so first-expiry-first-out order is FEFO above.
            _, sku, loc, qty, lot = op
            return ledger.post(Move(kind, sku=sku, location=loc, qty=qty, lot=lot, expiry=EXPIRY[lot]))
        if kind in ("ship", "damage", "return_out"):
            _, sku, loc, qty, lot = op
            return ledger.post(Move(kind, sku=sku, location=loc, qty=qty, lot=lot))
        if kind == "reserve":
            return ledger.reserve(op[1], op[2], op[3], lot=op[4])
        if kind in ("release", "consume"):
            res_id = (op[1] % len(self.reservations)) + 1 if self.reservations else 999
            return ledger.release(res_id, op[2]) if kind == "release" else ledger.consume(res_id, op[2])
        if kind == "transfer_out":
            return ledger.transfer(op[1], op[2], op[3], op[4])
        if kind == "transfer_in":
            code = f"BER-TR-{(op[1] % len(self.transfers)) + 1:06d}" if self.transfers else "BER-TR-000999"
            return ledger.transfer_in(code, op[2], close=op[3])
        if kind == "reverse":
            movement_id = self.movements[op[1] % len(self.movements)].id if self.movements else 999
            return ledger.reverse(movement_id, "property test")
        raise AssertionError(kind)


def stock_rows(conn) -> dict:
    return {(x.sku, x.location, x.lot): (x.on_hand, x.reserved, x.in_transit)
            for x in queries.stock_levels(conn, by_lot=True)}


def availability(conn) -> dict:
    """Available (on hand - reserved) per variant at each of this site's locations, from the stock table."""
    found = {(x.sku, x.location): x.available for x in queries.stock_levels(conn, site="BER")}
    return {(sku, loc): found.get((sku, loc), 0) for sku in KNOWN_SKUS for loc in OWN}


ERRORS = (InvalidInput, InsufficientStock, ForeignLocation, UnknownSku, UnknownLocation, UnknownReservation,
          UnknownTransfer, UnknownMovement, ReservationClosed, TransferClosed, NotReversible)


# Stock to start from, posted through the model like any other step, so that most examples ship and reserve.
OPENING = [("receive", "DOG-5", A1, 6, ""), ("receive", "DOG-5", A1, 4, "L1"), ("receive", "DOG-5", A1, 3, "L2"),
           ("receive", "CAT-2", A2, 5, "")]


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(operations, min_size=15, max_size=40))
def test_random_operations_keep_every_invariant(tmp_path_factory, ops):
    # A fresh file per example; synchronous=OFF because durability is not what this test is about.
    db = open_db(tmp_path_factory.mktemp("ledger") / "ledger.db", synchronous="OFF")
    try:
        populate(db)
        fake_clock = FakeClock()  # one second per write: every step has its own timestamp
        run_and_compare(Ledger(db, "BER", SITE_KEY, now=fake_clock), fake_clock, OPENING + ops)
    finally:
        db.close()


def run_and_compare(ledger: Ledger, fake_clock: FakeClock, ops) -> None:
    conn = ledger.db.connection()
    model = Model()
    history = []
    for op in ops:
        before = availability(conn)
        expected = None
        try:
            model.expect(op)
        except ERRORS as exc:
            expected = type(exc)
        event(f"{op[0]}: {expected.__name__ if expected else 'ok'}")  # see pytest --hypothesis-show-statistics
        try:
            result = model.run(ledger, op)
        except ERRORS as exc:
            assert type(exc) is expected, f"{op}: ledger raised {exc!r}, model expected {expected}"
        else:
            assert expected is None, f"{op}: ledger accepted, model expected {expected.__name__}"
            assert not result.replayed and result.movements
            model.movements.extend(result.movements)

        stored = stock_rows(conn)
        assert stored == model.nonzero(), op
        assert all(v >= 0 for row in stored.values() for v in row)
        after = availability(conn)
        if op[0] not in ("adjust", "count"):
            dropped = {k: (before[k], after[k]) for k in after if after[k] < 0 and after[k] < before[k]}
            assert not dropped, f"{op} took available stock below zero: {dropped}"
        assert check(conn) == [], op
        history.append((fake_clock.last_ts, queries.stock_levels(conn, by_lot=True), queries.stock_levels(conn)))

    # Stock as of a past moment is the replay of the movements up to it: what was recorded then.
    for ts, by_lot, summed in history:
        assert queries.stock_as_of(conn, ts, by_lot=True) == by_lot, ts
        assert queries.stock_as_of(conn, ts) == summed, ts

