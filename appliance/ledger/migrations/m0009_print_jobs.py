"""The print queue (issue 7): one row per job, written in the transaction that asked for the label.

The spooler in the agent sends queued jobs after commit. `sending` is written (and committed) before the first
byte leaves the box, so a job found `sending` at start was caught mid-send: it becomes `uncertain` and waits
for a person to reprint or dismiss it, never printed again on its own. `label` and `data` are what to print, not
the printer's bytes: a retry on another printer renders for that printer's resolution and language.
"""


def up(conn):
    conn.execute("""
        CREATE TABLE print_job (
            id               INTEGER PRIMARY KEY,
            printer          TEXT NOT NULL,
            label            TEXT NOT NULL,
            data             TEXT NOT NULL,
            copies           INTEGER NOT NULL DEFAULT 1 CHECK (copies BETWEEN 1 AND 1000),
            state            TEXT NOT NULL DEFAULT 'queued'
                             CHECK (state IN ('queued', 'sending', 'done', 'failed', 'uncertain', 'cancelled')),
            attempts         INTEGER NOT NULL DEFAULT 0,
            last_error       TEXT,
            created_at       TEXT NOT NULL,
            updated_at       TEXT NOT NULL,
            next_attempt_at  TEXT NOT NULL,
            sent_at          TEXT,
            created_by       TEXT,
            station          TEXT,
            ref_type         TEXT,
            ref_id           TEXT,
            reprint_of       INTEGER REFERENCES print_job(id),
            partial          INTEGER NOT NULL DEFAULT 0
        )""")
    conn.execute("CREATE INDEX print_job_due ON print_job(next_attempt_at) WHERE state = 'queued'")
    conn.execute("CREATE INDEX print_job_recent ON print_job(created_at)")
