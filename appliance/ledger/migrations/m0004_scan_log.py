"""The scan log: every raw scan with its station, device, interpretation and outcome (issue 4).

Unknown barcodes stay here as `unresolved` until someone links them to a variant, location or pack; the scan
can then be replayed. The raw text is kept exactly (control characters such as GS included).
"""


def up(conn):
    conn.execute("""
        CREATE TABLE scan_log (
            id              INTEGER PRIMARY KEY,
            at              TEXT NOT NULL,
            station         TEXT NOT NULL,
            device          TEXT NOT NULL,
            raw             TEXT NOT NULL,
            kind            TEXT,
            interpretation  TEXT,                     -- JSON of barcodes.Interpretation
            outcome         TEXT NOT NULL CHECK (outcome IN ('ok', 'warning', 'error', 'unresolved')),
            message         TEXT NOT NULL DEFAULT '',
            movement_ids    TEXT,                     -- JSON list, when the scan posted movements
            resolved_at     TEXT
        )""")
    conn.execute("CREATE INDEX scan_log_at ON scan_log(at)")
    conn.execute("CREATE INDEX scan_log_unresolved ON scan_log(at) WHERE outcome = 'unresolved'")
