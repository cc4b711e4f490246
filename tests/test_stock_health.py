"""The dashboard's incremental stock health: after any sequence of movements and catalog edits it equals the
summary computed from scratch, it really is moved by the new movements (not rebuilt), and the catalog counter's
triggers fire on what the counts depend on and on nothing else."""

from __future__ import annotations

import random
import threading

import pytest
from workers import FOREIGN_LOCATION, FOREIGN_SITE, LOCATIONS, SITE

from appliance.errors import ApplianceError
from appliance.ledger.models import Location, Product, ReorderOverride, Variant
from appliance.ledger.requests import Move
from appliance.ledger.sites import add_location
from appliance.webapp.stock_health import StockHealth, full_summary

EXTRA_LOCATION = "BER-B-01"
BER = (*LOCATIONS, EXTRA_LOCATION)
# (sku, reorder point, reorder quantity, active): with DOG-5, DOG-15 and CAT-2 of the standard set-up.
EXTRA_VARIANTS = (("FISH-1", 4, 2, True), ("BIRD-1", 3, None, True), ("OLD-1", 2, 1, False))
SKUS = ("DOG-5", "DOG-15", "CAT-2", *(row[0] for row in EXTRA_VARIANTS))
LOTS = ("", "", "L1", "L2")


def catalog_version(db) -> int:
    return db.execute_sql("SELECT n FROM change_counter WHERE name = 'catalog'").fetchone()[0]


def set_up(db) -> None:
    """Three locations at BER, six variants (one inactive) with assorted reorder points, and overrides: one
    on a line that will get stock, one on a line that never does (out by its override alone)."""
    add_location(db, SITE, EXTRA_LOCATION)
    with db.atomic("IMMEDIATE"):
        Variant.update(reorder_point=10, reorder_qty=5).where(Variant.sku == "DOG-5").execute()
        Variant.update(reorder_point=2, reorder_qty=3).where(Variant.sku == "DOG-15").execute()
        product = Product.create(sku="PET", name="Pet things")
        for sku, point, qty, active in EXTRA_VARIANTS:
            Variant.create(product=product, sku=sku, name=sku.lower(), reorder_point=point, reorder_qty=qty,
                           active=active)
        variant = {v.sku: v for v in Variant.select()}
        location = {loc.code: loc for loc in Location.select()}
        ReorderOverride.create(variant=variant["DOG-5"], location=location[LOCATIONS[1]], reorder_point=2)
        ReorderOverride.create(variant=variant["CAT-2"], location=location[EXTRA_LOCATION], reorder_point=1)
        ReorderOverride.create(variant=variant["FISH-1"], location=location[LOCATIONS[0]], reorder_qty=1)


def catalog_edit(db, rng: random.Random) -> None:
    """One of the edits movements cannot tell the counts about."""
    sku, code = rng.choice(SKUS), rng.choice(BER)
    with db.atomic("IMMEDIATE"):
        variant = Variant.get(Variant.sku == sku)
        location = Location.get(Location.code == code)
        choice = rng.randrange(4)
        if choice == 0:
            Variant.update(reorder_point=rng.choice([None, 0, 3, 8]), reorder_qty=rng.choice([None, 1, 4])) \
                .where(Variant.id == variant.id).execute()
        elif choice == 1:
            Variant.update(active=not variant.active).where(Variant.id == variant.id).execute()
        elif choice == 2:
            ReorderOverride.insert(variant=variant, location=location, reorder_point=rng.choice([None, 1, 6]),
                                   reorder_qty=rng.choice([None, 2])).on_conflict_replace().execute()
        else:
            ReorderOverride.delete().where(ReorderOverride.variant == variant).execute()


def random_request(ledger, rng: random.Random) -> None:
    """One ledger request of a random kind; refusals (not enough stock, nothing to release) are fine."""
    sku, here = rng.choice(SKUS), rng.choice(BER)
    lot, qty = rng.choice(LOTS), rng.randint(1, 8)
    choice = rng.randrange(10)
    if choice <= 1:
        ledger.post(Move("receive", sku=sku, location=here, qty=qty, lot=lot))
    elif choice == 2:
        ledger.post(Move("ship", sku=sku, location=here, qty=rng.randint(1, 5)))
    elif choice == 3:
        ledger.reserve(sku, here, rng.randint(1, 4))
    elif choice == 4:
        held = [row[0] for row in ledger.db.execute_sql("SELECT id FROM reservation WHERE status = 'held'")]
        if held:
            if rng.random() < 0.5:
                ledger.release(rng.choice(held))
            else:
                ledger.consume(rng.choice(held), 1)
    elif choice == 5:
        ledger.post(Move("adjust", sku=sku, location=here, qty=rng.choice([-3, -1, 2, 5]), lot=lot,
                         reason=rng.choice(["damaged", "found"])))
    elif choice == 6:
        # A count of zero where nothing ever was still writes a stock row: a line, out.
        ledger.post(Move("count", sku=sku, location=here, qty=rng.choice([0, 0, 3]), lot=lot))
    elif choice == 7:
        # The destination at the other site gets a stock row of zero on hand (in transit): a line there.
        ledger.transfer(sku, here, FOREIGN_LOCATION, rng.randint(1, 3))
    elif choice == 8:
        there = rng.choice([code for code in BER if code != here])
        ledger.move(Move("transfer_out", sku=sku, location=here, to_location=there, qty=rng.randint(1, 3)))
    else:
        reversible = [row[0] for row in ledger.db.execute_sql(
            "SELECT id FROM movement WHERE kind IN ('receive', 'ship', 'adjust', 'count')"
            " AND id NOT IN (SELECT reverses_id FROM movement WHERE reverses_id IS NOT NULL)")]
        if reversible:
            ledger.reverse(rng.choice(reversible), "booked by mistake")


@pytest.mark.parametrize("seed", range(6))
def test_incremental_equals_a_full_recompute_after_random_movements_and_edits(ledger, seed):
    rng = random.Random(seed)
    set_up(ledger.db)
    conn = ledger.db.connection()
    health, capped = StockHealth(SITE), StockHealth(SITE, max_increment=3)
    refused = 0
    for step in range(150):
        if rng.random() < 0.04:
            catalog_edit(ledger.db, rng)
        else:
            try:
                random_request(ledger, rng)
            except ApplianceError:
                refused += 1
        if rng.random() < 0.4:   # so that several movements often arrive between two requests
            expected = full_summary(conn, SITE)
            assert health.summary(conn) == expected, f"seed {seed}, step {step}"
            assert capped.summary(conn) == expected, f"seed {seed}, step {step} (capped)"
    assert health.summary(conn) == full_summary(conn, SITE)
    assert health.increments > health.rebuilds   # it was moved, not rebuilt, most of the time
    assert refused < 100
    # The sequence reached the cases that matter: a line at the other site, lines at every BER location.
    final = full_summary(conn, SITE)
    assert {c.site for c in final.locations} == {SITE, FOREIGN_SITE}
    assert {c.key for c in final.locations} >= set(BER)


def test_new_movements_move_the_counts_and_catalog_edits_rebuild_them(ledger):
    set_up(ledger.db)
    conn = ledger.db.connection()
    health = StockHealth(SITE)
    first = health.summary(conn)
    assert (health.rebuilds, health.increments) == (1, 0)
    # The override-only lines are there before any stock, out; the furthest below its reorder point first.
    assert [(line["sku"], line["location"], line["level"]) for line in first.lines] == \
        [("FISH-1", LOCATIONS[0], "out"), ("DOG-5", LOCATIONS[1], "out"), ("CAT-2", EXTRA_LOCATION, "out")]

    assert health.summary(conn) == first and (health.rebuilds, health.increments) == (1, 0)   # nothing new

    ledger.post(Move("receive", sku="DOG-5", location=LOCATIONS[0], qty=5))
    ledger.post(Move("receive", sku="DOG-5", location=LOCATIONS[1], qty=4, lot="L1"))
    after = health.summary(conn)
    assert (health.rebuilds, health.increments) == (1, 1)
    assert after == full_summary(conn, SITE)
    berlin = next(c for c in after.sites if c.key == SITE)
    # DOG-5 at the site: 9 ≤ 10 low; CAT-2 and FISH-1 out by their overrides alone.
    assert (berlin.skus, berlin.out, berlin.low, berlin.on_hand) == (3, 2, 1, 9)
    # The DOG-5 lines: low at BER-A-01 (5 ≤ 10), fine at BER-A-02 (4 > its override 2).
    assert [(line["sku"], line["location"]) for line in after.lines if line["sku"] == "DOG-5"] == \
        [("DOG-5", LOCATIONS[0])]

    # A renamed variant changes nothing the counts depend on: no rebuild, and the new name shows at once.
    with ledger.db.atomic("IMMEDIATE"):
        Variant.update(name="five kilos").where(Variant.sku == "DOG-5").execute()
    renamed = health.summary(conn)
    assert health.rebuilds == 1
    assert next(line for line in renamed.lines if line["sku"] == "DOG-5")["variant"] == "five kilos"

    # A reorder point does change them, without any movement.
    with ledger.db.atomic("IMMEDIATE"):
        Variant.update(reorder_point=3).where(Variant.sku == "DOG-5").execute()
    lowered = health.summary(conn)
    assert health.rebuilds == 2 and lowered == full_summary(conn, SITE)
    assert next(c for c in lowered.sites if c.key == SITE).low == 0


@pytest.mark.parametrize("statement, bumps", [
    ("UPDATE variant SET reorder_point = 7 WHERE sku = 'DOG-5'", True),
    ("UPDATE variant SET reorder_qty = 2 WHERE sku = 'DOG-5'", True),
    ("UPDATE variant SET active = 0 WHERE sku = 'DOG-5'", True),
    ("UPDATE variant SET reorder_point = NULL, reorder_qty = NULL, active = 1 WHERE sku = 'DOG-5'", False),
    ("UPDATE variant SET name = 'big', cost_price = 1 WHERE sku = 'DOG-5'", False),
    ("INSERT INTO variant (product_id, sku, created_at, updated_at) SELECT id, 'DOG-50', 'x', 'x' FROM product"
     " WHERE sku = 'DOG'", True),
    ("INSERT INTO reorder_override (variant_id, location_id, reorder_point) VALUES (1, 1, 3)", True),
    ("INSERT INTO location (code, site_id, created_at) VALUES ('BER-C-01', 'BER', 'x')", True),
    ("INSERT INTO site (id, name, created_at) VALUES ('PRG', 'Praha', 'x')", True),
    ("UPDATE site SET head_seq = head_seq + 1 WHERE id = 'BER'", False),
    ("UPDATE location SET name = 'front' WHERE code = 'BER-A-01'", False),
])
def test_the_catalog_counter_follows_what_the_counts_depend_on(ledger, statement, bumps):
    before = catalog_version(ledger.db)
    with ledger.db.atomic("IMMEDIATE"):
        ledger.db.execute_sql(statement)
    assert catalog_version(ledger.db) == before + bumps


def test_editing_and_deleting_an_override_bump_the_counter(ledger):
    with ledger.db.atomic("IMMEDIATE"):
        ledger.db.execute_sql("INSERT INTO reorder_override (variant_id, location_id, reorder_point) VALUES (1, 1, 3)")
    versions = [catalog_version(ledger.db)]
    for statement in ("UPDATE reorder_override SET reorder_point = 4", "DELETE FROM reorder_override"):
        with ledger.db.atomic("IMMEDIATE"):
            ledger.db.execute_sql(statement)
        versions.append(catalog_version(ledger.db))
    assert versions == [versions[0], versions[0] + 1, versions[0] + 2]


def test_a_movement_post_leaves_the_counter_alone(ledger):
    before = catalog_version(ledger.db)
    ledger.post(Move("receive", sku="DOG-5", location=LOCATIONS[0], qty=5))
    ledger.transfer("DOG-5", LOCATIONS[0], FOREIGN_LOCATION, 2)
    assert catalog_version(ledger.db) == before


def test_threads_sharing_one_state_all_see_the_truth(ledger):
    """Gunicorn threads call summary() together, each on its own connection, while movements arrive."""
    set_up(ledger.db)
    health = StockHealth(SITE)
    rng = random.Random(7)
    stop = threading.Event()
    failures: list[BaseException] = []

    def reader():
        try:
            while not stop.is_set():
                health.summary(ledger.db.connection())
        except BaseException as exc:  # noqa: BLE001 (reported by the test below)
            failures.append(exc)
        finally:
            ledger.db.close()   # this thread's connection

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(60):
            try:
                random_request(ledger, rng)
            except ApplianceError:
                pass
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not failures, failures[0]
    conn = ledger.db.connection()
    assert health.summary(conn) == full_summary(conn, SITE)
    assert health.increments > 0
