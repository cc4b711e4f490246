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
    # A search of one or two letters matches the start of product names, in name order.
    conn.execute("CREATE INDEX product_name_nocase ON product(name COLLATE NOCASE)")
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

    # The dashboard keeps its stock-health counts per web process and advances them by the movements since it
    # last looked (stock changes only through movements). What movements cannot tell it, a reorder point, an
    # override, a deactivated variant, a new location or site, bumps this counter, and the counts are rebuilt.
    # Not site: its row changes on every movement post.
    conn.execute("CREATE TABLE change_counter (name TEXT PRIMARY KEY, n INTEGER NOT NULL)")
    conn.execute("INSERT INTO change_counter (name, n) VALUES ('catalog', 0)")
    bump = "BEGIN UPDATE change_counter SET n = n + 1 WHERE name = 'catalog'; END"
    for name, event in (
            ("override_insert", "INSERT ON reorder_override"),
            ("override_update", "UPDATE ON reorder_override"),
            ("override_delete", "DELETE ON reorder_override"),
            ("variant_insert", "INSERT ON variant"),
            ("location_insert", "INSERT ON location"),
            ("site_insert", "INSERT ON site")):
        conn.execute(f"CREATE TRIGGER catalog_{name} AFTER {event} {bump}")
    # Catalog forms write every column on each save: only a real change of what the counts depend on counts.
    conn.execute(f"""
        CREATE TRIGGER catalog_variant_levels AFTER UPDATE OF reorder_point, reorder_qty, active ON variant
        WHEN old.reorder_point IS NOT new.reorder_point OR old.reorder_qty IS NOT new.reorder_qty
            OR old.active IS NOT new.active
        {bump}""")
