"""Reorder rules, purchase orders, alerts with their deliveries, and the agent's scheduled jobs (issue 6).

Reorder rules come in three levels, the nearest one wins for each field: a location's `reorder_override`,
a site's `reorder_site_rule`, and the variant's own columns. A location rule watches that location; a site rule
and the variant's default watch the site's total. `pack_size` and `min_order_qty` belong to the supplier's
offer and sit on the variant.

A purchase order's `qty_received` and `qty_cancelled` per line are projections kept in the transaction that
books the receipt (ledger movements `receive` with `ref_type = 'purchase_order'`, `ref_id = '<number>/<line>'`)
or the cancellation; `purchase_order_event` is the history a person reads: sent, each receipt with its
variances, cancelled, closed.

An alert is open while `resolved_at` is NULL; the partial unique index makes "raised once while open" a
constraint rather than a convention. `alert_delivery` is the outbox of emails and webhooks, written in the
same transaction as the alert, so a crash loses no notification and a failed delivery never touches stock.
"""


def up(conn):
    for table in ("variant", "reorder_override"):
        conn.execute(f"ALTER TABLE {table} ADD COLUMN max_qty INTEGER CHECK (max_qty IS NULL OR max_qty > 0)")
        conn.execute(f"ALTER TABLE {table} ADD COLUMN supplier_id INTEGER REFERENCES supplier(id)")
    conn.execute("ALTER TABLE variant ADD COLUMN pack_size INTEGER NOT NULL DEFAULT 1 CHECK (pack_size >= 1)")
    conn.execute("ALTER TABLE variant ADD COLUMN min_order_qty INTEGER NOT NULL DEFAULT 0 "
                 "CHECK (min_order_qty >= 0)")
    conn.execute("ALTER TABLE app_user ADD COLUMN email TEXT")
    conn.execute("ALTER TABLE supplier ADD COLUMN address TEXT NOT NULL DEFAULT ''")
    conn.execute("ALTER TABLE supplier ADD COLUMN active INTEGER NOT NULL DEFAULT 1")
    conn.execute("""
        CREATE TABLE reorder_site_rule (
            id             INTEGER PRIMARY KEY,
            variant_id     INTEGER NOT NULL REFERENCES variant(id),
            site_id        TEXT NOT NULL REFERENCES site(id),
            reorder_point  INTEGER CHECK (reorder_point IS NULL OR reorder_point >= 0),
            reorder_qty    INTEGER CHECK (reorder_qty IS NULL OR reorder_qty > 0),
            max_qty        INTEGER CHECK (max_qty IS NULL OR max_qty > 0),
            supplier_id    INTEGER REFERENCES supplier(id),
            UNIQUE (variant_id, site_id)
        )""")
    conn.execute("""
        CREATE TABLE doc_counter (
            site_id  TEXT NOT NULL REFERENCES site(id),
            kind     TEXT NOT NULL,
            last     INTEGER NOT NULL,
            PRIMARY KEY (site_id, kind)
        ) WITHOUT ROWID""")
    conn.execute("""
        CREATE TABLE purchase_order (
            id           INTEGER PRIMARY KEY,
            number       TEXT NOT NULL UNIQUE,
            site_id      TEXT NOT NULL REFERENCES site(id),
            supplier_id  INTEGER NOT NULL REFERENCES supplier(id),
            ship_to_id   INTEGER NOT NULL REFERENCES location(id),
            status       TEXT NOT NULL DEFAULT 'draft'
                         CHECK (status IN ('draft', 'sent', 'partial', 'received', 'cancelled')),
            auto         INTEGER NOT NULL DEFAULT 0,
            note         TEXT NOT NULL DEFAULT '',
            created_at   TEXT NOT NULL,
            created_by   TEXT,
            sent_at      TEXT,
            sent_to      TEXT,
            expected_on  TEXT,
            closed_at    TEXT,
            updated_at   TEXT NOT NULL
        )""")
    # "One draft collects every low item of that supplier until it is sent."
    conn.execute("CREATE UNIQUE INDEX purchase_order_auto_draft ON purchase_order(site_id, supplier_id, ship_to_id)"
                 " WHERE status = 'draft' AND auto = 1")
    conn.execute("CREATE INDEX purchase_order_status ON purchase_order(status, site_id)")
    conn.execute("""
        CREATE TABLE purchase_order_line (
            id             INTEGER PRIMARY KEY,
            po_id          INTEGER NOT NULL REFERENCES purchase_order(id),
            line_no        INTEGER NOT NULL,
            variant_id     INTEGER NOT NULL REFERENCES variant(id),
            qty_ordered    INTEGER NOT NULL CHECK (qty_ordered > 0),
            unit_cost      INTEGER CHECK (unit_cost IS NULL OR unit_cost >= 0),
            qty_received   INTEGER NOT NULL DEFAULT 0 CHECK (qty_received >= 0),
            qty_cancelled  INTEGER NOT NULL DEFAULT 0 CHECK (qty_cancelled >= 0),
            note           TEXT NOT NULL DEFAULT '',
            UNIQUE (po_id, line_no)
        )""")
    conn.execute("CREATE INDEX purchase_order_line_variant ON purchase_order_line(variant_id)")
    conn.execute("""
        CREATE TABLE purchase_order_event (
            id       INTEGER PRIMARY KEY,
            po_id    INTEGER NOT NULL REFERENCES purchase_order(id),
            ts       TEXT NOT NULL,
            kind     TEXT NOT NULL,
            user     TEXT,
            detail   TEXT NOT NULL DEFAULT '{}'
        )""")
    conn.execute("CREATE INDEX purchase_order_event_po ON purchase_order_event(po_id, id)")
    conn.execute("""
        CREATE TABLE alert (
            id               INTEGER PRIMARY KEY,
            kind             TEXT NOT NULL,
            subject          TEXT NOT NULL,
            site_id          TEXT,
            severity         TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
            message          TEXT NOT NULL,
            detail           TEXT NOT NULL DEFAULT '{}',
            first_seen       TEXT NOT NULL,
            last_seen        TEXT NOT NULL,
            seen_count       INTEGER NOT NULL DEFAULT 1,
            resolved_at      TEXT,
            acknowledged_at  TEXT,
            acknowledged_by  TEXT
        )""")
    conn.execute("CREATE UNIQUE INDEX alert_open ON alert(kind, subject) WHERE resolved_at IS NULL")
    conn.execute("CREATE INDEX alert_recent ON alert(first_seen)")
    conn.execute("""
        CREATE TABLE alert_delivery (
            id               INTEGER PRIMARY KEY,
            alert_id         INTEGER REFERENCES alert(id),
            event            TEXT NOT NULL CHECK (event IN ('raised', 'resolved', 'digest')),
            channel          TEXT NOT NULL CHECK (channel IN ('email', 'webhook')),
            target           TEXT NOT NULL,
            payload          TEXT NOT NULL,
            status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
            attempts         INTEGER NOT NULL DEFAULT 0,
            next_attempt_at  TEXT NOT NULL,
            last_error       TEXT,
            created_at       TEXT NOT NULL,
            delivered_at     TEXT
        )""")
    conn.execute("CREATE INDEX alert_delivery_due ON alert_delivery(next_attempt_at) WHERE status = 'pending'")
    conn.execute("""
        CREATE TABLE job_run (
            id             INTEGER PRIMARY KEY,
            job            TEXT NOT NULL,
            scheduled_for  TEXT,
            started_at     TEXT NOT NULL,
            finished_at    TEXT,
            outcome        TEXT NOT NULL CHECK (outcome IN ('running', 'ok', 'failed', 'missed', 'interrupted')),
            detail         TEXT NOT NULL DEFAULT ''
        )""")
    conn.execute("CREATE INDEX job_run_job ON job_run(job, id)")
    # Where the agent's watchers stopped reading movements (the reorder trigger), so a restart resumes there.
    conn.execute("CREATE TABLE agent_cursor (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID")
    # The web app's change feed tells open pages about alerts the agent raised or resolved (events.py).
    conn.execute("INSERT INTO change_counter (name, n) VALUES ('alert', 0)")
    for event in ("INSERT", "UPDATE"):
        conn.execute(f"CREATE TRIGGER alert_changed_{event.lower()} AFTER {event} ON alert BEGIN "
                     "UPDATE change_counter SET n = n + 1 WHERE name = 'alert'; END")
