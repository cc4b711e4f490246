"""Catalog, sites and locations, users, the movement ledger and its projections."""

SCHEMA = r"""
CREATE TABLE site (
    id          TEXT PRIMARY KEY CHECK (id GLOB '[A-Z]*' AND length(id) BETWEEN 2 AND 8),
    name        TEXT NOT NULL,
    is_local    INTEGER NOT NULL DEFAULT 0,
    epoch       INTEGER NOT NULL DEFAULT 1,
    head_seq    INTEGER NOT NULL DEFAULT 0,   -- last sequence number written (local) or applied (replica)
    created_at  TEXT NOT NULL
);

CREATE TABLE supplier (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    email           TEXT,
    phone           TEXT,
    lead_time_days  INTEGER CHECK (lead_time_days IS NULL OR lead_time_days >= 0),
    created_at      TEXT NOT NULL
);

CREATE TABLE product (
    id           INTEGER PRIMARY KEY,
    sku          TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    category     TEXT NOT NULL DEFAULT '',
    supplier_id  INTEGER REFERENCES supplier(id),
    image_url    TEXT,
    active       INTEGER NOT NULL DEFAULT 1,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX product_category ON product(category);

CREATE TABLE variant (
    id             INTEGER PRIMARY KEY,
    product_id     INTEGER NOT NULL REFERENCES product(id),
    sku            TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL DEFAULT '',
    cost_price     INTEGER CHECK (cost_price IS NULL OR cost_price >= 0),   -- minor units
    sale_price     INTEGER CHECK (sale_price IS NULL OR sale_price >= 0),   -- minor units
    unit           TEXT NOT NULL DEFAULT 'each',
    reorder_point  INTEGER CHECK (reorder_point IS NULL OR reorder_point >= 0),
    reorder_qty    INTEGER CHECK (reorder_qty IS NULL OR reorder_qty > 0),
    active         INTEGER NOT NULL DEFAULT 1,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX variant_product ON variant(product_id);

CREATE TABLE pack (
    id          INTEGER PRIMARY KEY,
    variant_id  INTEGER NOT NULL REFERENCES variant(id),
    name        TEXT NOT NULL,
    qty         INTEGER NOT NULL CHECK (qty >= 1),
    UNIQUE (variant_id, name)
);

CREATE TABLE barcode (
    code        TEXT PRIMARY KEY,
    variant_id  INTEGER NOT NULL REFERENCES variant(id),
    pack_id     INTEGER REFERENCES pack(id),
    kind        TEXT NOT NULL DEFAULT 'gtin' CHECK (kind IN ('gtin', 'supplier', 'internal'))
);
CREATE INDEX barcode_variant ON barcode(variant_id);

CREATE TABLE location (
    id         INTEGER PRIMARY KEY,
    code       TEXT NOT NULL UNIQUE CHECK (code NOT GLOB '*[^A-Z0-9.-]*' AND length(code) >= 1),
    site_id    TEXT NOT NULL REFERENCES site(id),
    name       TEXT NOT NULL DEFAULT '',
    kind       TEXT NOT NULL DEFAULT 'bin'
               CHECK (kind IN ('warehouse', 'zone', 'bin', 'dock', 'in-transit')),
    parent_id  INTEGER REFERENCES location(id),
    active     INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
CREATE INDEX location_site ON location(site_id);

CREATE TABLE reorder_override (
    id             INTEGER PRIMARY KEY,
    variant_id     INTEGER NOT NULL REFERENCES variant(id),
    location_id    INTEGER NOT NULL REFERENCES location(id),
    reorder_point  INTEGER CHECK (reorder_point IS NULL OR reorder_point >= 0),
    reorder_qty    INTEGER CHECK (reorder_qty IS NULL OR reorder_qty > 0),
    UNIQUE (variant_id, location_id)
);

CREATE TABLE app_user (
    id          INTEGER PRIMARY KEY,
    login       TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL DEFAULT '',
    role        TEXT NOT NULL CHECK (role IN ('manager', 'staff', 'purchasing', 'viewer')),
    active      INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL
);

-- The ledger. Rows are never updated or deleted (triggers below enforce it).
-- d_on_hand and d_reserved apply to (variant, location, lot); d_in_transit applies to
-- (variant, coalesce(to_location, location), lot): in-transit stock is shown at its destination.
CREATE TABLE movement (
    id              INTEGER PRIMARY KEY,
    origin          TEXT NOT NULL REFERENCES site(id),
    epoch           INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    op_id           TEXT,
    kind            TEXT NOT NULL CHECK (kind IN (
                        'receive', 'ship', 'adjust', 'transfer_out', 'transfer_in', 'count', 'reserve',
                        'release', 'return_in', 'return_out', 'damage', 'discrepancy', 'reversal')),
    variant_id      INTEGER NOT NULL REFERENCES variant(id),
    location_id     INTEGER NOT NULL REFERENCES location(id),
    to_location_id  INTEGER REFERENCES location(id),
    lot             TEXT NOT NULL DEFAULT '',
    expiry          TEXT,
    d_on_hand       INTEGER NOT NULL DEFAULT 0,
    d_reserved      INTEGER NOT NULL DEFAULT 0,
    d_in_transit    INTEGER NOT NULL DEFAULT 0,
    unit_cost       INTEGER,
    ref_type        TEXT,
    ref_id          TEXT,
    reverses_id     INTEGER UNIQUE REFERENCES movement(id),
    reason          TEXT,
    note            TEXT,
    user_login      TEXT,
    device          TEXT,
    ts              TEXT NOT NULL,
    UNIQUE (origin, epoch, seq)
);
CREATE INDEX movement_variant_ts ON movement(variant_id, ts);
CREATE INDEX movement_location ON movement(location_id, id);
CREATE INDEX movement_ts ON movement(ts);
CREATE INDEX movement_ref ON movement(ref_type, ref_id) WHERE ref_type IS NOT NULL;
CREATE INDEX movement_op ON movement(op_id) WHERE op_id IS NOT NULL;

CREATE TRIGGER movement_immutable_update BEFORE UPDATE ON movement
BEGIN SELECT RAISE(ABORT, 'movements are immutable: post a reversal instead'); END;
CREATE TRIGGER movement_immutable_delete BEFORE DELETE ON movement
BEGIN SELECT RAISE(ABORT, 'movements are immutable: post a reversal instead'); END;

-- Idempotency keys of requests posted on this box, with a digest of the request they named.
CREATE TABLE op (
    op_id           TEXT PRIMARY KEY,
    request_digest  TEXT NOT NULL,
    created_at      TEXT NOT NULL
) WITHOUT ROWID;

-- Projection of movements; written in the same transaction as the movement.
CREATE TABLE stock (
    variant_id   INTEGER NOT NULL REFERENCES variant(id),
    location_id  INTEGER NOT NULL REFERENCES location(id),
    lot          TEXT NOT NULL DEFAULT '',
    expiry       TEXT,
    on_hand      INTEGER NOT NULL DEFAULT 0 CHECK (on_hand >= 0),
    reserved     INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    in_transit   INTEGER NOT NULL DEFAULT 0 CHECK (in_transit >= 0),
    PRIMARY KEY (variant_id, location_id, lot)
) WITHOUT ROWID;
CREATE INDEX stock_location ON stock(location_id);

-- One document per transfer request; which lots are in transit is read from its movements.
CREATE TABLE transfer (
    id                INTEGER PRIMARY KEY,
    code              TEXT NOT NULL UNIQUE,
    origin            TEXT NOT NULL REFERENCES site(id),
    variant_id        INTEGER NOT NULL REFERENCES variant(id),
    from_location_id  INTEGER NOT NULL REFERENCES location(id),
    to_location_id    INTEGER NOT NULL REFERENCES location(id),
    qty_sent          INTEGER NOT NULL CHECK (qty_sent > 0),
    qty_received      INTEGER NOT NULL DEFAULT 0 CHECK (qty_received >= 0),
    qty_short         INTEGER NOT NULL DEFAULT 0 CHECK (qty_short >= 0),
    qty_over          INTEGER NOT NULL DEFAULT 0 CHECK (qty_over >= 0),
    status            TEXT NOT NULL DEFAULT 'in_transit'
                      CHECK (status IN ('in_transit', 'partial', 'received', 'closed')),
    created_at        TEXT NOT NULL,
    closed_at         TEXT
);
CREATE INDEX transfer_open ON transfer(to_location_id) WHERE status IN ('in_transit', 'partial');

CREATE TABLE reservation (
    id            INTEGER PRIMARY KEY,
    variant_id    INTEGER NOT NULL REFERENCES variant(id),
    location_id   INTEGER NOT NULL REFERENCES location(id),
    lot           TEXT NOT NULL DEFAULT '',
    qty           INTEGER NOT NULL CHECK (qty > 0),
    qty_consumed  INTEGER NOT NULL DEFAULT 0 CHECK (qty_consumed >= 0),
    qty_released  INTEGER NOT NULL DEFAULT 0 CHECK (qty_released >= 0),
    ref           TEXT,
    status        TEXT NOT NULL DEFAULT 'held'
                  CHECK (status IN ('held', 'consumed', 'released', 'expired')),
    expires_at    TEXT,
    created_at    TEXT NOT NULL,
    closed_at     TEXT,
    CHECK (qty_consumed + qty_released <= qty)
);
CREATE INDEX reservation_held ON reservation(expires_at) WHERE status = 'held';
CREATE INDEX reservation_ref ON reservation(ref);
"""


def up(conn):
    for statement in SCHEMA.split(";\n"):
        if statement.strip():
            conn.execute(statement)
