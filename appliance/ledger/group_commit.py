"""Group commit: concurrent ledger writers of one process share one transaction and one fsync.

With `synchronous=FULL` every COMMIT waits for the SD card, and the write lock is held across that wait, so
writers queue behind each other's fsyncs. Here the first writer to arrive becomes the leader: it takes every
request queued so far, runs each in its own SAVEPOINT on its own connection, commits once, and wakes the
others. A request the ledger refuses rolls back to its savepoint alone; the rest of the group commits.

Every caller returns only after the COMMIT that holds its rows (or its error), so nothing is reported that a
power cut could take back. Leadership passes to the next waiting request after each group, so no one request
serves everybody else's work for long. A caller alone (the CLI, one dock) pays nothing: a group of one runs
without a savepoint, exactly as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

T = TypeVar("T")

MAX_GROUP = 64   # requests per transaction: keeps one group's lock hold (and a failed COMMIT's reach) short


class Ticket(Generic[T]):
    __slots__ = ("work", "result", "error", "settled", "leads")

    def __init__(self, work: Callable[[], T]) -> None:
        self.work = work
        self.result: Any = None
        self.error: BaseException | None = None
        self.settled = threading.Event()
        self.leads = False   # woken to lead the next group instead of with a result

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result


class GroupCommit:
    """`run(work)` runs `work()` inside a transaction opened by `transaction()`, perhaps beside other callers'
    work, and returns what it returned once that transaction is committed. `execute(sql)` runs the savepoint
    statements on the transaction's connection."""

    def __init__(self, transaction: Callable[[], AbstractContextManager], execute: Callable[[str], Any],
                 max_group: int = MAX_GROUP) -> None:
        self._transaction = transaction
        self._execute = execute
        self._max_group = max_group
        self._mutex = threading.Lock()
        self._queue: list[Ticket] = []
        self._leading = False
        self.groups = 0       # transactions run, and the requests in them: for tests and benchmarks
        self.requests = 0

    @property
    def waiting(self) -> int:
        """Requests queued for the next group."""
        with self._mutex:
            return len(self._queue)

    def run(self, work: Callable[[], T]) -> T:
        ticket: Ticket[T] = Ticket(work)
        with self._mutex:
            self._queue.append(ticket)
            leads = not self._leading
            self._leading = True
        if not leads:
            ticket.settled.wait()
            if not ticket.leads:
                return ticket.outcome()
        self._lead()
        return ticket.outcome()

    def _lead(self) -> None:
        with self._mutex:
            group, self._queue = self._queue[:self._max_group], self._queue[self._max_group:]
        try:
            self._commit(group)
        finally:
            with self._mutex:
                if self._queue:
                    heir = self._queue[0]
                    heir.leads = True
                    heir.settled.set()
                else:
                    self._leading = False
            for ticket in group:
                ticket.leads = False
                ticket.settled.set()

    def _commit(self, group: list[Ticket]) -> None:
        self.groups += 1
        self.requests += len(group)
        try:
            with self._transaction():
                if len(group) == 1:
                    group[0].result = group[0].work()   # its error rolls the one-request transaction back
                    return
                for ticket in group:
                    self._execute("SAVEPOINT group_member")
                    try:
                        ticket.result = ticket.work()
                    except Exception as error:  # noqa: BLE001 - the request's own failure, for its caller
                        ticket.error, ticket.result = error, None
                        self._execute("ROLLBACK TO group_member")   # if this fails, the whole group does
                    self._execute("RELEASE group_member")
        except BaseException as error:
            # BEGIN, a rollback to a savepoint or COMMIT failed (disk full, I/O error), or the leader was
            # interrupted: nothing of the group is written, and every member hears why.
            shared = error if isinstance(error, Exception) else GroupInterrupted(repr(error))
            for ticket in group:
                if ticket.error is None:
                    ticket.error, ticket.result = shared, None
            if not isinstance(error, Exception):
                raise


class GroupInterrupted(RuntimeError):
    """The thread leading a group was interrupted before COMMIT: nothing of the group was written."""
