"""Many OS processes writing one ledger file at once (DESIGN.md §2: BEGIN IMMEDIATE, rules inside the lock).

Each racer is a separate process (multiprocessing, 'spawn') that opens the database itself with `open_db` and
waits at a barrier with the others, so the posts genuinely contend for the write lock.
"""

from __future__ import annotations

import multiprocessing

import pytest
import workers
from workers import LOCATIONS, SITE, build_site, open_ledger

from appliance.ledger import queries
from appliance.ledger.check import check
from appliance.ledger.requests import Move

SPAWN = multiprocessing.get_context("spawn")
LOC = LOCATIONS[0]
SKU = "DOG-5"


def race(path, calls: list[tuple[str, dict]]) -> list[tuple]:
    """Run each (action, args) of `calls` in its own process, all released at once; their outcomes."""
    barrier = SPAWN.Barrier(len(calls))
    results = SPAWN.Queue()
    processes = [SPAWN.Process(target=workers.race, args=(str(path), action, args, barrier, results))
                 for action, args in calls]
    for process in processes:
        process.start()
    try:
        outcomes = [results.get(timeout=180) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=60)
            if process.exitcode is None:
                process.kill()
                process.join()
        results.close()
        results.join_thread()
    crashes = [o[1] for o in outcomes if o[0] == "crash"]
    assert not crashes, crashes[0]
    assert [p.exitcode for p in processes] == [0] * len(processes)
    return outcomes


@pytest.fixture
def stocked(db_path):
    """The standard set-up with 100 DOG-5 on hand at BER-A-01; yields the path, checks the file afterwards."""
    build_site(db_path)
    ledger = open_ledger(db_path)
    ledger.post(Move("receive", sku=SKU, location=LOC, qty=100))
    ledger.db.close()
    yield db_path
    ledger = open_ledger(db_path)
    try:
        conn = ledger.db.connection()
        assert check(conn) == []
        seqs = [row[0] for row in conn.execute("SELECT seq FROM movement WHERE origin = ? ORDER BY seq", (SITE,))]
        assert seqs == list(range(1, len(seqs) + 1))
        assert conn.execute("SELECT head_seq FROM site WHERE id = ?", (SITE,)).fetchone()[0] == len(seqs)
    finally:
        ledger.db.close()


def level(path) -> tuple[int, int]:
    ledger = open_ledger(path)
    try:
        (line,) = queries.stock_levels(ledger.db.connection(), sku=SKU, location=LOC)
        return line.on_hand, line.reserved
    finally:
        ledger.db.close()


def count(path, sql: str, params=()) -> int:
    ledger = open_ledger(path)
    try:
        return ledger.db.execute_sql(sql, params).fetchone()[0]
    finally:
        ledger.db.close()


def _ship(qty: int, op_id: str | None = None) -> tuple[str, dict]:
    return "post", {"move": {"kind": "ship", "sku": SKU, "location": LOC, "qty": qty}, "op_id": op_id}


def _reserve(qty: int) -> tuple[str, dict]:
    return "reserve", {"sku": SKU, "location": LOC, "qty": qty}


def _tally(outcomes) -> tuple[list, list]:
    ok = [o for o in outcomes if o[0] == "ok"]
    refused = [o for o in outcomes if o[0] == "error"]
    assert len(ok) + len(refused) == len(outcomes)
    return ok, refused


@pytest.mark.slow
def test_forty_processes_ship_from_one_location_holding_100(stocked):
    ok, refused = _tally(race(stocked, [_ship(3)] * 40))
    assert len(ok) == 33 and len(refused) == 7
    # Stock only goes down, so every refusal came after the 33rd shipment and saw the 1 unit left.
    assert {(code, details["available"]) for _, code, details in refused} == {("insufficient_stock", 1)}
    assert len({ids[0] for _, ids, _ in ok}) == 33
    assert level(stocked) == (1, 0)
    assert count(stocked, "SELECT count(*) FROM movement WHERE kind = 'ship'") == 33


@pytest.mark.slow
def test_forty_processes_reserve_from_one_location_holding_100(stocked):
    ok, refused = _tally(race(stocked, [_reserve(3)] * 40))
    assert len(ok) == 33 and len(refused) == 7
    assert {(code, details["available"]) for _, code, details in refused} == {("insufficient_stock", 1)}
    assert level(stocked) == (100, 99)
    assert count(stocked, "SELECT count(*) FROM reservation WHERE status = 'held' AND qty = 3") == 33


@pytest.mark.slow
def test_shipments_and_reservations_race_for_the_same_units(stocked):
    ok, refused = _tally(race(stocked, [_ship(6), _reserve(6)] * 10))
    assert len(ok) == 16 and len(refused) == 4
    assert {(code, details["available"]) for _, code, details in refused} == {("insufficient_stock", 4)}
    on_hand, reserved = level(stocked)
    assert on_hand - reserved == 4
    assert count(stocked, "SELECT count(*) FROM movement WHERE kind IN ('ship', 'reserve')") == 16


def test_the_same_op_id_from_several_processes_at_once_writes_once(stocked):
    outcomes = race(stocked, [_ship(3, op_id="gun-7:scan-1")] * 8)
    ok, refused = _tally(outcomes)
    assert not refused
    assert {tuple(ids) for _, ids, _ in ok} == {tuple(ok[0][1])} and len(ok[0][1]) == 1
    assert sorted(replayed for _, _, replayed in ok) == [False] + [True] * 7
    assert count(stocked, "SELECT count(*) FROM movement WHERE op_id = ?", ("gun-7:scan-1",)) == 1
    assert count(stocked, "SELECT count(*) FROM op WHERE op_id = ?", ("gun-7:scan-1",)) == 1
    assert level(stocked) == (97, 0)


def test_the_same_op_id_with_different_requests_at_once_writes_one_of_them(stocked):
    outcomes = race(stocked, [_ship(1, op_id="k"), _ship(2, op_id="k"), _ship(1, op_id="k"), _ship(2, op_id="k")])
    ok, refused = _tally(outcomes)
    # Whichever request took the key first wins; the same request replays it, the other is refused.
    assert len(ok) == 2 and len(refused) == 2
    assert {code for _, code, _ in refused} == {"op_id_reused"}
    assert sorted(replayed for _, _, replayed in ok) == [False, True] and ok[0][1] == ok[1][1]
    on_hand, _ = level(stocked)
    assert on_hand in (98, 99)
