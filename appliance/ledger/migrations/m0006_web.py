"""The web UI (issue 5): passwords, login lockout, API tokens, and the product search index.

A user without a password hash cannot log in to the web UI (the CLI sets one with `appliance user passwd`).
`session_version` is part of every session cookie: bumping it (new password, user disabled, role changed)
logs that user out everywhere. API tokens are stored only as a SHA-256 of the token: they are 256 random bits,
so a slow hash adds nothing and a leaked database leaks no usable token.

`variant_search` is an FTS5 trigram index over each variant's SKU, names and category, kept by triggers, so a
search for any part of a name ("chick" in "Adult Chicken 5 kg") stays an index lookup at 50,000 variants.
"""


def up(conn):
    conn.execute("ALTER TABLE app_user ADD COLUMN password_hash TEXT")
    conn.execute("ALTER TABLE app_user ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE app_user ADD COLUMN locked_until TEXT")
    conn.execute("ALTER TABLE app_user ADD COLUMN session_version INTEGER NOT NULL DEFAULT 1")
    conn.execute("ALTER TABLE app_user ADD COLUMN language TEXT")
    conn.execute("""
        CREATE TABLE api_token (
            id            INTEGER PRIMARY KEY,
            login         TEXT NOT NULL REFERENCES app_user(login),
            name          TEXT NOT NULL,
            role          TEXT NOT NULL CHECK (role IN ('manager', 'staff', 'purchasing', 'viewer')),
            token_hash    TEXT NOT NULL UNIQUE,
            created_at    TEXT NOT NULL,
            last_used_at  TEXT,
            revoked_at    TEXT
        )""")
    conn.execute("""
        CREATE TABLE login_throttle (
            client        TEXT PRIMARY KEY,         -- remote address
            failures      INTEGER NOT NULL,
            window_start  TEXT NOT NULL,
            blocked_until TEXT
        )""")

    # Reversing a movement looks for an earlier reversal of it; the history pages show "reversed by".
    conn.execute("CREATE INDEX movement_reverses ON movement(reverses_id) WHERE reverses_id IS NOT NULL")
    # "What did Jan book this week?" on the movements page.
    conn.execute("CREATE INDEX movement_user_ts ON movement(user_login, ts) WHERE user_login IS NOT NULL")
    # The dock screen reads one station's latest scans.
    conn.execute("CREATE INDEX scan_log_station ON scan_log(station, id)")
    conn.execute("CREATE VIRTUAL TABLE variant_search USING fts5(sku, text, tokenize = 'trigram')")
    conn.execute("""
        INSERT INTO variant_search (rowid, sku, text)
        SELECT v.id, v.sku, p.name || ' ' || v.name || ' ' || p.sku || ' ' || p.category
        FROM variant v JOIN product p ON p.id = v.product_id""")
    conn.execute("""
        CREATE TRIGGER variant_search_insert AFTER INSERT ON variant BEGIN
            INSERT INTO variant_search (rowid, sku, text)
            SELECT new.id, new.sku, p.name || ' ' || new.name || ' ' || p.sku || ' ' || p.category
            FROM product p WHERE p.id = new.product_id;
        END""")
    conn.execute("""
        CREATE TRIGGER variant_search_update AFTER UPDATE OF sku, name, product_id ON variant BEGIN
            DELETE FROM variant_search WHERE rowid = old.id;
            INSERT INTO variant_search (rowid, sku, text)
            SELECT new.id, new.sku, p.name || ' ' || new.name || ' ' || p.sku || ' ' || p.category
            FROM product p WHERE p.id = new.product_id;
        END""")
    conn.execute("""
        CREATE TRIGGER variant_search_delete AFTER DELETE ON variant BEGIN
            DELETE FROM variant_search WHERE rowid = old.id;
        END""")
    conn.execute("""
        CREATE TRIGGER variant_search_product AFTER UPDATE OF name, sku, category ON product BEGIN
            DELETE FROM variant_search WHERE rowid IN (SELECT id FROM variant WHERE product_id = new.id);
            INSERT INTO variant_search (rowid, sku, text)
            SELECT v.id, v.sku, new.name || ' ' || v.name || ' ' || new.sku || ' ' || new.category
            FROM variant v WHERE v.product_id = new.id;
        END""")
