"""Group commit (ledger/group_commit.py): threads of one process posting at once share one transaction.

The grouping tests hold the first writer inside its transaction until the others have queued behind it, so
the second group is known to hold all of them; everything is then read back from the real SQLite file.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager

import pytest
from workers import LOCATIONS, SITE

from appliance.errors import InsufficientStock
from appliance.ledger import queries
from appliance.ledger.check import check
from appliance.ledger.group_commit import GroupCommit, GroupInterrupted
from appliance.ledger.requests import Move
from appliance.ledger.service import apply_request

LOC = LOCATIONS[0]


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


class Racers:
    """Run callables on threads; `outcomes[i]` is ('ok', value) or ('error', exception)."""

    def __init__(self, calls) -> None:
        self.outcomes: list = [None] * len(calls)
        self.threads = [threading.Thread(target=self._run, args=(i, call)) for i, call in enumerate(calls)]

    def _run(self, index: int, call) -> None:
        try:
            self.outcomes[index] = ("ok", call())
        except BaseException as error:  # noqa: BLE001 - the test inspects it
            self.outcomes[index] = ("error", error)

    def start(self) -> Racers:
        for thread in self.threads:
            thread.start()
        return self

    def join(self) -> list:
        for thread in self.threads:
            thread.join(timeout=60)
            assert not thread.is_alive(), "a writer never returned"
        return self.outcomes


def first_then(ledger, others: list, first_move: Move) -> tuple[list, list]:
    """Post `first_move`, and while its transaction is open let `others` (callables) queue; outcomes of both."""
    group = ledger._group

    def first():
        def work(ops):
            wait_until(lambda: group.waiting == len(others))
            return apply_request(ops, [first_move])
        return ledger.submit(work, user="admin", device="t")

    before = group.groups
    lead = Racers([first]).start()
    wait_until(lambda: group.groups == before + 1)   # the first one leads and holds the transaction open
    rest = Racers(others).start()
    return lead.join(), rest.join()


def seqs(conn) -> list[int]:
    return [r[0] for r in conn.execute("SELECT seq FROM movement WHERE origin = ? ORDER BY seq", (SITE,))]


def test_writers_queued_behind_a_transaction_commit_together_in_the_next(ledger):
    posts = [lambda i=i: ledger.post(Move("receive", sku="DOG-5", location=LOC, qty=i + 1), op_id=f"r{i}",
                                     user="admin") for i in range(6)]
    (lead,), rest = first_then(ledger, posts, Move("receive", sku="CAT-2", location=LOC, qty=1))
    assert lead[0] == "ok" and all(outcome[0] == "ok" for outcome in rest), rest
    assert (ledger._group.groups, ledger._group.requests) == (2, 7)
    conn = ledger.db.connection()
    (line,) = queries.stock_levels(conn, sku="DOG-5", location=LOC)
    assert line.on_hand == sum(range(1, 7))
    assert seqs(conn) == list(range(1, 8))
    assert check(conn, signatures=True) == []
    # Every caller got its own movement back, committed under its own op id.
    assert sorted(outcome[1].movements[0].d_on_hand for outcome in rest) == list(range(1, 7))


def test_a_refused_request_rolls_back_alone_and_its_caller_hears_why(ledger):
    ledger.post(Move("receive", sku="DOG-5", location=LOC, qty=5), user="admin")
    posts = [
        lambda: ledger.post(Move("ship", sku="DOG-5", location=LOC, qty=2), op_id="a", user="admin"),
        lambda: ledger.post(Move("ship", sku="DOG-5", location=LOC, qty=50), op_id="too-many", user="admin"),
        lambda: ledger.post(Move("ship", sku="DOG-5", location=LOC, qty=3), op_id="b", user="admin"),
    ]
    _lead, rest = first_then(ledger, posts, Move("receive", sku="CAT-2", location=LOC, qty=1))
    assert [outcome[0] for outcome in rest] == ["ok", "error", "ok"]
    assert isinstance(rest[1][1], InsufficientStock)
    conn = ledger.db.connection()
    assert queries.stock_levels(conn, sku="DOG-5", location=LOC) == []   # 5 received, 2 + 3 shipped
    # The refused request left no movement, no op id and no gap in the sequence.
    assert conn.execute("SELECT count(*) FROM op WHERE op_id = 'too-many'").fetchone()[0] == 0
    assert seqs(conn) == list(range(1, 5))
    assert check(conn, signatures=True) == []
    # Its retry is a new request, not a replay.
    with pytest.raises(InsufficientStock):
        ledger.post(Move("ship", sku="DOG-5", location=LOC, qty=50), op_id="too-many", user="admin")


def test_the_same_op_id_twice_in_one_group_is_written_once(ledger):
    post = lambda: ledger.post(Move("receive", sku="DOG-5", location=LOC, qty=4), op_id="same",  # noqa: E731
                               user="admin")
    _lead, rest = first_then(ledger, [post, post], Move("receive", sku="CAT-2", location=LOC, qty=1))
    results = [outcome[1] for outcome in rest]
    assert sorted(result.replayed for result in results) == [False, True]
    assert results[0].movements == results[1].movements
    conn = ledger.db.connection()
    (line,) = queries.stock_levels(conn, sku="DOG-5", location=LOC)
    assert line.on_hand == 4


def test_many_threads_posting_lose_nothing_and_leave_a_gapless_chain(ledger):
    def client(c: int):
        done = []
        for i in range(40):
            ledger.post(Move("receive", sku="DOG-15", location=LOCATIONS[c % 2], qty=3), op_id=f"c{c}-{i}-in",
                        user="admin")
            done.append(ledger.post(Move("ship", sku="DOG-15", location=LOCATIONS[c % 2], qty=1),
                                    op_id=f"c{c}-{i}-out", user="admin"))
        return len(done)

    outcomes = Racers([lambda c=c: client(c) for c in range(8)]).start().join()
    assert outcomes == [("ok", 40)] * 8
    conn = ledger.db.connection()
    assert sum(line.on_hand for line in queries.stock_levels(conn, sku="DOG-15")) == 8 * 40 * 2
    assert seqs(conn) == list(range(1, 8 * 80 + 1))
    assert check(conn, signatures=True) == []
    assert ledger._group.requests == 8 * 80 and ledger._group.groups <= ledger._group.requests
    assert ledger._group.waiting == 0


def test_a_write_inside_an_open_transaction_is_refused(ledger):
    with ledger.write() as _ops, pytest.raises(RuntimeError, match="do not nest"):
        ledger.post(Move("receive", sku="DOG-5", location=LOC, qty=1))


# --- the mechanism on a bare connection: failures of the transaction itself --------------------------------

class Table:
    """A one-table SQLite file; `transaction()` can be told to fail at COMMIT."""

    def __init__(self, path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("CREATE TABLE t (v INTEGER)")
        self.fail_commit = False
        self.group = GroupCommit(self.transaction, self.conn.execute)

    @contextmanager
    def transaction(self):
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        if self.fail_commit:
            self.conn.execute("ROLLBACK")
            raise sqlite3.OperationalError("disk I/O error")
        self.conn.execute("COMMIT")

    def insert(self, value: int) -> int:
        self.conn.execute("INSERT INTO t VALUES (?)", (value,))
        return value

    def values(self) -> list[int]:
        return sorted(r[0] for r in self.conn.execute("SELECT v FROM t"))

    def hold_first(self, first, others) -> tuple[list, list]:
        def held():
            wait_until(lambda: self.group.waiting == len(others))
            return first()
        before = self.group.groups
        lead = Racers([lambda: self.group.run(held)]).start()
        wait_until(lambda: self.group.groups == before + 1)
        rest = Racers([lambda call=call: self.group.run(call) for call in others]).start()
        return lead.join(), rest.join()


def test_a_failed_commit_reaches_every_member_and_writes_nothing(tmp_path):
    table = Table(tmp_path / "t.db")
    table.group.run(lambda: table.insert(0))
    table.fail_commit = True
    lead, rest = table.hold_first(lambda: table.insert(1), [lambda v=v: table.insert(v) for v in (2, 3, 4)])
    for kind, error in lead + rest:
        assert kind == "error" and "disk I/O error" in str(error)
    assert table.values() == [0]
    table.fail_commit = False
    assert table.group.run(lambda: table.insert(5)) == 5   # leadership was handed back
    assert table.values() == [0, 5]


class Stop(BaseException):
    """Stands in for KeyboardInterrupt or SystemExit arriving in the leading thread."""


def test_an_interrupted_leader_writes_nothing_and_releases_the_others(tmp_path):
    table = Table(tmp_path / "t.db")

    def interrupted():
        table.insert(1)
        raise Stop

    def first():
        wait_until(lambda: table.group.waiting == 2)
        return table.insert(0)

    lead = Racers([lambda: table.group.run(first)]).start()
    wait_until(lambda: table.group.groups == 1)
    # The second group: the interrupted work runs first, on the leading thread (the first to queue).
    second = Racers([lambda: table.group.run(interrupted)]).start()
    wait_until(lambda: table.group.waiting == 1)
    third = Racers([lambda: table.group.run(lambda: table.insert(2))]).start()
    assert lead.join() == [("ok", 0)]
    (leader,) = second.join()
    (member,) = third.join()
    assert leader[0] == "error" and isinstance(leader[1], Stop)
    assert member[0] == "error" and isinstance(member[1], GroupInterrupted)
    assert table.values() == [0]
    assert table.group.run(lambda: table.insert(3)) == 3
