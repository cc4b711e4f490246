"""Signed movements and sync state (DESIGN.md §3).

- movement.token: the origin's signed token over the movement body (sync/tokens.py), exactly as stored and
  re-served; movement.hash: token_hash(token), which the next movement of the origin names as `prev`.
- site.head_hash: hash of the site's last movement here (written for the local site, applied for replicas);
  site.recovering: set by the agent while it pulls this site's own movements back from peers (writes refused).
- sync_peer: what the agent last heard from each peer (head, high-water marks, presence, quarantine).
- sync_alarm: rejected, forged, forked or unresolvable messages, counted per (site, kind) for the dashboard.
- remote_request: reserve/release requests this box sends to the owner of another site's stock (durable, so a
  retry after a restart uses the same idempotency key).
Movements written before this migration have no token; `appliance check` reports them and they do not sync.
"""


def up(conn):
    conn.execute("ALTER TABLE movement ADD COLUMN token TEXT")
    conn.execute("ALTER TABLE movement ADD COLUMN hash TEXT")
    conn.execute("ALTER TABLE site ADD COLUMN head_hash TEXT NOT NULL DEFAULT ''")
    conn.execute("ALTER TABLE site ADD COLUMN recovering INTEGER NOT NULL DEFAULT 0")
    conn.execute("""
        CREATE TABLE sync_peer (
            site_id            TEXT PRIMARY KEY REFERENCES site(id),
            state              TEXT NOT NULL DEFAULT 'unknown',   -- online / offline / unknown (advisory)
            last_heard         TEXT,
            head_epoch         INTEGER NOT NULL DEFAULT 0,
            head_seq           INTEGER NOT NULL DEFAULT 0,
            head_hash          TEXT NOT NULL DEFAULT '',
            head_ts            TEXT,
            hwm                TEXT NOT NULL DEFAULT '{}',       -- JSON: origin -> {epoch, seq, hash}
            quarantined_at     TEXT,
            quarantine_reason  TEXT
        ) WITHOUT ROWID""")
    conn.execute("""
        CREATE TABLE sync_alarm (
            site_id     TEXT NOT NULL,       -- the site the message claimed to come from
            kind        TEXT NOT NULL,       -- bad_message, bad_signature, foreign_location, fork, unresolvable, ...
            count       INTEGER NOT NULL DEFAULT 0,
            first_at    TEXT NOT NULL,
            last_at     TEXT NOT NULL,
            detail      TEXT NOT NULL,       -- the last one
            PRIMARY KEY (site_id, kind)
        ) WITHOUT ROWID""")
    conn.execute("""
        CREATE TABLE remote_request (
            idem_key        TEXT PRIMARY KEY,
            action          TEXT NOT NULL CHECK (action IN ('reserve', 'release')),
            owner           TEXT NOT NULL REFERENCES site(id),
            sku             TEXT,
            location        TEXT,
            qty             INTEGER,
            ttl_s           INTEGER,
            reserve_key     TEXT,            -- release: the idem_key of the reservation it releases
            status          TEXT NOT NULL DEFAULT 'PENDING',
            reservation_id  INTEGER,
            available       INTEGER,
            expires_at      TEXT,
            reason          TEXT,
            attempts        INTEGER NOT NULL DEFAULT 0,
            created_at      TEXT NOT NULL,
            updated_at      TEXT NOT NULL,
            deadline        TEXT NOT NULL
        ) WITHOUT ROWID""")
    conn.execute("CREATE INDEX remote_request_pending ON remote_request(status) WHERE status IN ('PENDING', 'UNKNOWN')")
