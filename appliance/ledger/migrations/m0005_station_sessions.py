"""Station sessions and replayable scans (issue 4).

A station's session (mode, location, items carried or counted, who is scanning) is a row, written in the
same transaction as the scan's movements and its scan log row, so a power cut in the middle of a count loses
nothing that was scanned and books nothing twice. Each scan log row keeps the session as it was before the
scan, so an unknown barcode, once linked, is replayed in the context it was scanned in.
"""


def up(conn):
    conn.execute("""
        CREATE TABLE station_session (
            station     TEXT PRIMARY KEY,
            state       TEXT NOT NULL,              -- JSON of workflow.Session
            updated_at  TEXT NOT NULL
        )""")
    conn.execute("ALTER TABLE scan_log ADD COLUMN session TEXT")      # JSON: the session before this scan
    conn.execute("ALTER TABLE scan_log ADD COLUMN feedback TEXT")     # JSON of feedback.Feedback
    conn.execute("ALTER TABLE scan_log ADD COLUMN replay_of INTEGER REFERENCES scan_log(id)")
    conn.execute("ALTER TABLE scan_log ADD COLUMN replayed_by INTEGER REFERENCES scan_log(id)")
