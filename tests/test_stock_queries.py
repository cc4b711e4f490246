"""Stock list pages: the paged query (variants first, in SKU order) returns exactly what the plain one does."""

from __future__ import annotations

import random

import pytest

from appliance.ledger import queries, sites
from appliance.ledger.models import Product, Variant
from appliance.ledger.requests import Move


@pytest.fixture
def stocked(ledger):
    """60 variants with stock in two bins, some in lots, some emptied again, some never stocked."""
    rng = random.Random(7)
    sites.add_location(ledger.db, "BER", "BER-B-01")
    product = Product.create(sku="BULK", name="Bulk 100% item_x")
    for n in range(60):
        Variant.create(product=product, sku=f"BLK-{n:03d}", name=f"v{n}")
    moves = []
    for n in range(60):
        if n % 7 == 0:
            continue  # never stocked
        for loc in ("BER-A-01", "BER-B-01")[: 1 + n % 2]:
            lot = f"L{n % 3}" if n % 4 == 0 else ""
            moves.append(Move("receive", sku=f"BLK-{n:03d}", location=loc, qty=rng.randint(1, 9), lot=lot,
                              expiry="2027-01-01" if lot else None))
    ledger.post(moves)
    for n in range(0, 60, 5):
        for line in queries.stock_levels(ledger.db.connection(), sku=f"BLK-{n:03d}", by_lot=True):
            ledger.post(Move("ship", sku=line.sku, location=line.location, qty=line.on_hand, lot=line.lot or ""))
    ledger.post(Move("transfer_out", sku="BLK-001", location="BER-A-01", to_location="WAW-A-01", qty=1))
    return ledger.db.connection()


@pytest.mark.parametrize("site", [None, "BER", "WAW"])
@pytest.mark.parametrize("search", [None, "BLK-01", "blk-0", "100%", "item_x", "nothing"])
@pytest.mark.parametrize("by_lot", [False, True])
@pytest.mark.parametrize("include_empty", [False, True])
def test_a_page_is_the_slice_of_the_whole_list(stocked, site, search, by_lot, include_empty):
    args = dict(site=site, search=search, by_lot=by_lot, include_empty=include_empty, sort="sku")
    whole = queries.stock_levels(stocked, **args)
    for limit, offset in ((50, 0), (7, 0), (7, 7), (10, 33), (5, 200)):
        assert queries.stock_levels(stocked, limit=limit, offset=offset, **args) == whole[offset:offset + limit]


def test_the_page_covers_lines_of_one_variant_in_several_bins(stocked):
    lines = queries.stock_levels(stocked, site="BER", limit=3)
    assert [(ln.sku, ln.location) for ln in lines] == [("BLK-001", "BER-A-01"), ("BLK-001", "BER-B-01"),
                                                       ("BLK-002", "BER-A-01")]
