"""The catalog through /api/v1: variants and products listed, searched, read, created and changed."""

from __future__ import annotations

import pytest
from webtools import token_for

from appliance.ledger.requests import Move

EAN = "4006381333931"   # a valid GTIN-13


class Api:
    def __init__(self, web, role: str = "manager") -> None:
        self.client = web.app.test_client()
        self.headers = {"Authorization": f"Bearer {token_for(web, role)}"}

    def get(self, url):
        return self.client.get(url, headers=self.headers)

    def post(self, url, body):
        return self.client.post(url, json=body, headers=self.headers)

    def patch(self, url, body):
        return self.client.patch(url, json=body, headers=self.headers)


@pytest.fixture
def api(web):
    return Api(web)


def skus(response) -> list[str]:
    return [item["sku"] for item in response.get_json()["items"]]


def test_list_variants(web, api):
    body = api.get("/api/v1/variants").get_json()
    assert (body["total"], body["limit"], body["offset"], body["next"]) == (3, 50, 0, None)
    assert body["items"][0] == {"sku": "CAT-2", "product_sku": "CAT", "product": "Cat litter", "name": "2 kg",
                                "category": "", "unit": "each", "active": True, "cost_price": None,
                                "sale_price": None, "reorder_point": None, "reorder_qty": None}


def test_variant_paging(web, api):
    page = api.get("/api/v1/variants?limit=2").get_json()
    assert [i["sku"] for i in page["items"]] == ["CAT-2", "DOG-15"]
    assert page["next"] == "/api/v1/variants?limit=2&offset=2"
    last = api.get(page["next"]).get_json()
    assert ([i["sku"] for i in last["items"]], last["next"]) == (["DOG-5"], None)


@pytest.mark.parametrize("text, expected", [
    ("DOG-5", ["DOG-5"]),           # exact SKU first
    ("dog", ["DOG-15", "DOG-5"]),   # SKU prefix and name
    ("litter", ["CAT-2"]),          # part of a name (trigram index)
    (EAN, ["DOG-5"]),               # a barcode
    ("zebra", []),
])
def test_search_variants(web, api, text, expected):
    web.db.execute_sql("INSERT INTO barcode (code, variant_id) SELECT ?, id FROM variant WHERE sku = 'DOG-5'",
                       (EAN,))
    assert sorted(skus(api.get(f"/api/v1/variants?q={text}"))) == sorted(expected)


def test_inactive_variants_are_hidden_unless_asked(web, api):
    assert api.patch("/api/v1/variants/CAT-2", {"active": False}).status_code == 200
    assert skus(api.get("/api/v1/variants")) == ["DOG-15", "DOG-5"]
    assert skus(api.get("/api/v1/variants?include_inactive=true")) == ["CAT-2", "DOG-15", "DOG-5"]


def test_variant_detail(web, api):
    db = web.db
    db.execute_sql("INSERT INTO pack (variant_id, name, qty) SELECT id, 'case', 12 FROM variant WHERE sku = 'DOG-5'")
    db.execute_sql("INSERT INTO barcode (code, variant_id) SELECT ?, id FROM variant WHERE sku = 'DOG-5'", (EAN,))
    db.execute_sql("INSERT INTO barcode (code, variant_id, pack_id, kind) SELECT '14006381333938', v.id, p.id, 'gtin'"
                   " FROM variant v JOIN pack p ON p.variant_id = v.id WHERE v.sku = 'DOG-5'")
    db.execute_sql("INSERT INTO reorder_override (variant_id, location_id, reorder_point, reorder_qty)"
                   " SELECT v.id, l.id, 5, 24 FROM variant v, location l WHERE v.sku = 'DOG-5' AND l.code = 'BER-A-01'")
    web.ledger.post(Move("receive", sku="DOG-5", location="BER-A-01", qty=10))
    web.ledger.reserve("DOG-5", "BER-A-01", 3)
    web.ledger.transfer("DOG-5", "BER-A-01", "WAW-A-01", 2)
    detail = api.get("/api/v1/variants/DOG-5").get_json()
    assert (detail["sku"], detail["product"], detail["cost_price"]) == ("DOG-5", "Dog food", 1299)
    assert detail["barcodes"] == [{"code": EAN, "kind": "gtin", "pack": None},
                                  {"code": "14006381333938", "kind": "gtin", "pack": "case"}]
    assert detail["packs"] == [{"name": "case", "qty": 12}]
    assert detail["reorder_overrides"] == [{"location": "BER-A-01", "reorder_point": 5, "reorder_qty": 24}]
    assert detail["stock_by_site"] == {
        "BER": {"on_hand": 8, "reserved": 3, "available": 5, "in_transit": 0},
        "WAW": {"on_hand": 0, "reserved": 0, "available": 0, "in_transit": 2}}


def test_unknown_variant_and_product_are_404(web, api):
    response = api.get("/api/v1/variants/NOPE-1")
    assert (response.status_code, response.get_json()["error"]["code"]) == (404, "unknown_sku")
    response = api.get("/api/v1/products/NOPE")
    assert (response.status_code, response.get_json()["error"]["code"]) == (404, "unknown_product")
    response = api.patch("/api/v1/variants/NOPE-1", {"name": "x"})
    assert (response.status_code, response.get_json()["error"]["code"]) == (404, "unknown_sku")


def test_products(web, api):
    body = api.get("/api/v1/products").get_json()
    assert [(p["sku"], p["variant_count"]) for p in body["items"]] == [("CAT", 1), ("DOG", 2)]
    assert body["total"] == 2
    assert [p["sku"] for p in api.get("/api/v1/products?q=dog").get_json()["items"]] == ["DOG"]
    assert [p["sku"] for p in api.get("/api/v1/products?q=litt").get_json()["items"]] == ["CAT"]
    assert [p["sku"] for p in api.get("/api/v1/products?q=ca").get_json()["items"]] == ["CAT"]
    product = api.get("/api/v1/products/DOG").get_json()
    assert (product["name"], [v["sku"] for v in product["variants"]]) == ("Dog food", ["DOG-15", "DOG-5"])


def test_create_a_variant_of_a_new_product(web, api):
    response = api.post("/api/v1/variants", {
        "sku": "BIRD-1", "product": "Bird seed", "category": "birds", "name": "1 kg", "cost_price": 250,
        "sale_price": 499, "unit": "bag", "reorder_point": 4, "reorder_qty": 20, "barcodes": [EAN]})
    assert response.status_code == 201, response.get_json()
    assert response.headers["Location"] == "/api/v1/variants/BIRD-1"
    created = response.get_json()
    assert (created["product_sku"], created["product"], created["category"], created["unit"]) == (
        "BIRD-1", "Bird seed", "birds", "bag")
    assert (created["cost_price"], created["sale_price"], created["reorder_point"], created["reorder_qty"]) == (
        250, 499, 4, 20)
    assert created["barcodes"] == [{"code": EAN, "kind": "gtin", "pack": None}]
    assert skus(api.get("/api/v1/variants?q=bird")) == ["BIRD-1"]     # the search index knows it at once
    assert skus(api.get(f"/api/v1/variants?q={EAN}")) == ["BIRD-1"]


def test_create_a_variant_of_an_existing_product(web, api):
    response = api.post("/api/v1/variants", {"sku": "DOG-30", "product_sku": "DOG", "name": "30 kg"})
    assert response.status_code == 201
    assert [v["sku"] for v in api.get("/api/v1/products/DOG").get_json()["variants"]] == ["DOG-15", "DOG-30",
                                                                                          "DOG-5"]
    response = api.post("/api/v1/variants", {"sku": "DOG-40", "product_sku": "DOG", "product": "Cat food"})
    assert response.status_code == 400
    assert "Dog food" in response.get_json()["error"]["details"]["fields"]["product"]


def test_create_refuses_what_the_import_refuses(web, api):
    response = api.post("/api/v1/variants", {
        "sku": "has space", "product_sku": "", "name": 5, "cost_price": -1, "reorder_qty": 0, "active": "yes",
        "barcodes": ["4006381333932", "1.23E+12", "x" * 65], "colour": "red"})
    assert response.status_code == 400
    fields = response.get_json()["error"]["details"]["fields"]
    assert set(fields) == {"sku", "product_sku", "name", "cost_price", "reorder_qty", "active", "barcodes[0]",
                           "barcodes[1]", "barcodes[2]", "colour"}
    assert fields["sku"] == "only letters, digits and - _ . / are allowed (no spaces)"
    assert "check digit" in fields["barcodes[0]"] and "Excel" in fields["barcodes[1]"]
    assert api.post("/api/v1/variants", {"sku": "NEW-1"}).get_json()["error"]["details"]["fields"] == {
        "product": "required: product NEW-1 is new and needs a name"}
    assert web.db.execute_sql("SELECT count(*) FROM variant").fetchone()[0] == 3


def test_create_conflicts(web, api):
    response = api.post("/api/v1/variants", {"sku": "DOG-5", "product": "Dog food"})
    assert (response.status_code, response.get_json()["error"]["code"]) == (409, "already_exists")
    api.patch("/api/v1/variants/DOG-5", {"barcodes": [EAN]})
    response = api.post("/api/v1/variants", {"sku": "NEW-2", "product": "New", "barcodes": [EAN]})
    assert response.status_code == 400
    assert response.get_json()["error"]["details"]["fields"] == {
        "barcodes[0]": f"{EAN} already belongs to SKU DOG-5"}
    assert api.get("/api/v1/variants/NEW-2").status_code == 404


def test_patch_a_variant(web, api):
    response = api.patch("/api/v1/variants/DOG-5", {"name": "5 kg bag", "sale_price": 1999, "cost_price": None,
                                                   "unit": "bag", "reorder_point": 3, "reorder_qty": 12,
                                                   "barcodes": [EAN, "SUP-123"]})
    assert response.status_code == 200, response.get_json()
    changed = response.get_json()
    assert (changed["name"], changed["sale_price"], changed["cost_price"], changed["unit"]) == (
        "5 kg bag", 1999, None, "bag")
    assert (changed["reorder_point"], changed["reorder_qty"]) == (3, 12)
    assert changed["barcodes"] == [{"code": EAN, "kind": "gtin", "pack": None},
                                   {"code": "SUP-123", "kind": "supplier", "pack": None}]
    assert changed["updated_at"] > changed["created_at"]
    replaced = api.patch("/api/v1/variants/DOG-5", {"barcodes": ["SUP-123"]}).get_json()
    assert replaced["barcodes"] == [{"code": "SUP-123", "kind": "supplier", "pack": None}]
    assert api.patch("/api/v1/variants/DOG-5", {}).get_json()["name"] == "5 kg bag"


def test_patch_refuses_bad_and_unknown_fields(web, api):
    response = api.patch("/api/v1/variants/DOG-5", {"sku": "DOG-6", "sale_price": "12.50", "reorder_point": -1,
                                                    "barcodes": "4006381333931"})
    assert response.status_code == 400
    assert set(response.get_json()["error"]["details"]["fields"]) == {"sku", "sale_price", "reorder_point",
                                                                      "barcodes"}
    assert api.get("/api/v1/variants/DOG-5").get_json()["sale_price"] is None
    api.patch("/api/v1/variants/CAT-2", {"barcodes": [EAN]})
    response = api.patch("/api/v1/variants/DOG-5", {"barcodes": [EAN], "name": "changed"})
    assert response.status_code == 400
    assert api.get("/api/v1/variants/DOG-5").get_json()["name"] == "5 kg"


def test_only_edit_products_may_write_the_catalog(web):
    for role in ("staff", "purchasing", "viewer"):
        response = Api(web, role).post("/api/v1/variants", {"sku": f"X-{role}", "product": "X"})
        assert (response.status_code, response.get_json()["error"]["code"]) == (403, "forbidden")


@pytest.mark.parametrize("url", ["/api/v1/variants?q=dog%00food", "/api/v1/products?q=dog%00food",
                                 "/api/v1/stock?sku=DOG%00"])
def test_a_nul_character_in_a_query_is_a_400_not_a_crash(web, api, url):
    response = api.get(url)
    assert response.status_code == 400
    assert "NUL" in next(iter(response.get_json()["error"]["details"]["fields"].values()))
