"""Site registry: every site's Ed25519 public keys (by key id) and the location prefix it owns."""


def up(conn):
    conn.execute("""
        CREATE TABLE site_key (
            kid         TEXT PRIMARY KEY CHECK (kid GLOB '[A-Z]*#[1-9]*'),
            site_id     TEXT NOT NULL REFERENCES site(id),
            public_key  TEXT NOT NULL UNIQUE CHECK (public_key GLOB 'ed25519:*'),
            created_at  TEXT NOT NULL,
            retired_at  TEXT
        )""")
    conn.execute("CREATE INDEX site_key_site ON site_key(site_id)")
    conn.execute("ALTER TABLE site ADD COLUMN location_prefix TEXT")
