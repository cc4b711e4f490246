"""The product pages over a real ledger file: list and instant search, detail, the create/edit form, photos."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from webtools import ROLES, csrf

from appliance.ledger.requests import Move

EAN = "4006381333931"        # a valid EAN-13
OTHER_EAN = "5901234123457"
BAD_EAN = "4006381333932"    # check digit off by one
COST_HEADER = '<th class="num">Cost</th>'


def form_data(client, **values) -> dict:
    data = {"csrf_token": csrf(client), "product_sku": "", "product_name": "", "category": "", "description": "",
            "sku": "", "variant_name": "", "unit": "each", "cost_price": "", "sale_price": "", "reorder_point": "",
            "reorder_qty": "", "active": "1"}
    data.update(values)
    return data


def edit_data(web, client, variant: str, **values) -> dict:
    """What the edit form of `variant` posts when nothing is changed, with `values` changed."""
    page = client.get(f"/products/{variant}/edit").get_data(as_text=True)
    data = {"csrf_token": csrf(client)}
    for name, value in re.findall(r'<input id="f-[^"]+" name="([^"]+)" type="text" value="([^"]*)"', page):
        data[name] = value
    for name, value in re.findall(r'<input name="((?:barcodes|packs|reorder)-\d+-\w+)" value="([^"]*)"', page):
        data[name] = value
    for name, value in re.findall(r'<input type="hidden" name="(packs-\d+-id)" value="([^"]*)"', page):
        data[name] = value
    data["description"] = re.search(r'name="description"[^>]*>([^<]*)</textarea>', page).group(1)
    if 'name="active" value="1" checked' in page:
        data["active"] = "1"
    data.update(values)
    return data


def png_bytes(size=(1600, 1200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def skus_of(response) -> list[str]:
    return [item["sku"] for item in response.get_json()["items"]]


@pytest.mark.parametrize("role", ROLES)
def test_every_product_page_renders_for_each_role_and_costs_only_where_allowed(web, role):
    client = web.client(role)
    for url in ("/products", "/products?q=DOG", "/products/DOG-5", "/products/search.json?q=DOG",
                "/products?offset=50", "/products?inactive=1"):
        response = client.get(url)
        assert response.status_code == 200, (role, url, response.get_data(as_text=True)[:300])
    listing = client.get("/products").get_data(as_text=True)
    detail = client.get("/products/DOG-5").get_data(as_text=True)
    found = client.get("/products/search.json?q=DOG-5").get_json()["items"][0]
    if role in ("manager", "purchasing"):
        assert COST_HEADER in listing and "12.99" in listing and "12.99" in detail
        assert found["cost_price"] == 1299
    else:
        assert COST_HEADER not in listing and "12.99" not in listing and "12.99" not in detail
        assert "cost_price" not in found
    for url in ("/products/new", "/products/DOG-5/edit"):
        assert client.get(url).status_code == (200 if role == "manager" else 403), (role, url)
    assert (">New product<" in listing) == (role == "manager")


def test_product_pages_need_a_login_and_unknown_skus_are_404(web):
    anonymous = web.client()
    response = anonymous.get("/products")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    client = web.client("manager")
    for url in ("/products/NOPE-1", "/products/NOPE-1/edit", "/products/images/" + "0" * 24 + ".webp",
                "/products/images/..%2Fledger.db"):
        assert client.get(url).status_code == 404, url
    assert "NOPE-1" in client.get("/products/NOPE-1").get_data(as_text=True)


def test_staff_cannot_post_the_product_form(web):
    client = web.client("staff")
    response = client.post("/products/new", data=form_data(client, sku="X-1", product_name="X"))
    assert response.status_code == 403
    assert web.db.execute_sql("SELECT count(*) FROM variant WHERE sku = 'X-1'").fetchone()[0] == 0


def test_a_product_created_through_the_form_is_listed_and_searchable(web):
    client = web.client("manager")
    response = client.post("/products/new", data=form_data(
        client, sku="BIRD-1", product_name="Bird seed mix", variant_name="1 kg", category="Birds",
        cost_price="12.99", sale_price="1.234,50", reorder_point="4", reorder_qty="10",
        **{"barcodes-0-code": EAN, "packs-0-name": "case", "packs-0-qty": "6",
           "barcodes-1-code": OTHER_EAN, "barcodes-1-pack": "case",
           "reorder-0-location": "ber-a-02", "reorder-0-point": "2", "reorder-0-qty": "5"}))
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    assert response.headers["Location"].endswith("/products/BIRD-1")
    row = web.db.execute_sql(
        "SELECT p.sku, p.name, p.category, v.name, v.cost_price, v.sale_price, v.reorder_point, v.reorder_qty,"
        " v.active FROM variant v JOIN product p ON p.id = v.product_id WHERE v.sku = 'BIRD-1'").fetchone()
    assert row == ("BIRD-1", "Bird seed mix", "Birds", "1 kg", 1299, 123450, 4, 10, 1)
    codes = dict(web.db.execute_sql(
        "SELECT b.code, coalesce(k.name || ':' || k.qty, '') FROM barcode b LEFT JOIN pack k ON k.id = b.pack_id"
        " JOIN variant v ON v.id = b.variant_id WHERE v.sku = 'BIRD-1'").fetchall())
    assert codes == {EAN: "", OTHER_EAN: "case:6"}
    assert web.db.execute_sql(
        "SELECT l.code, ro.reorder_point, ro.reorder_qty FROM reorder_override ro JOIN location l"
        " ON l.id = ro.location_id JOIN variant v ON v.id = ro.variant_id WHERE v.sku = 'BIRD-1'").fetchall() == \
        [("BER-A-02", 2, 5)]

    detail = client.get("/products/BIRD-1").get_data(as_text=True)
    assert "Saved BIRD-1." in detail and EAN in detail and "BER-A-02" in detail and "1234.50" in detail
    assert "BIRD-1" in client.get("/products").get_data(as_text=True)
    for text in ("BIRD-1", "bird", "seed", "SEED MI", EAN, OTHER_EAN, "Bi"):
        assert "BIRD-1" in skus_of(client.get("/products/search.json", query_string={"q": text})), text
        assert "BIRD-1" in client.get("/products", query_string={"q": text}).get_data(as_text=True), text
    assert "BIRD-1" not in skus_of(client.get("/products/search.json?q=DOG"))


def test_a_variant_is_added_to_an_existing_product_only_under_its_name(web):
    client = web.client("manager")
    prefilled = client.get("/products/new?product=DOG").get_data(as_text=True)
    assert 'value="Dog food"' in prefilled
    wrong = client.post("/products/new", data=form_data(client, sku="DOG-25", product_sku="DOG",
                                                         product_name="Dog fod"))
    assert wrong.status_code == 400
    assert 'id="product_name-error"' in wrong.get_data(as_text=True)
    right = client.post("/products/new", data=form_data(client, sku="DOG-25", product_sku="DOG",
                                                         product_name="Dog food", variant_name="25 kg"))
    assert right.status_code == 302
    assert web.db.execute_sql("SELECT count(*) FROM variant v JOIN product p ON p.id = v.product_id"
                              " WHERE p.sku = 'DOG'").fetchone()[0] == 3
    again = client.post("/products/new", data=form_data(client, sku="DOG-25", product_name="Other"))
    assert again.status_code == 400 and 'id="sku-error"' in again.get_data(as_text=True)


def test_search_json_answers_texts_of_one_two_and_three_or_more_characters(web):
    client = web.client("viewer")
    assert set(skus_of(client.get("/products/search.json?q=D"))) == {"DOG-5", "DOG-15"}       # SKU prefix
    assert set(skus_of(client.get("/products/search.json?q=c"))) == {"CAT-2"}                  # name prefix
    assert set(skus_of(client.get("/products/search.json?q=Do"))) == {"DOG-5", "DOG-15"}
    assert set(skus_of(client.get("/products/search.json?q=litter"))) == {"CAT-2"}             # trigram
    assert set(skus_of(client.get("/products/search.json?q=og fo"))) == {"DOG-5", "DOG-15"}
    assert skus_of(client.get("/products/search.json?q=zzz")) == []
    everything = client.get("/products/search.json").get_json()
    assert everything["total"] == 3 and everything["more"] is False and everything["next"] is None
    assert everything["html"].count("<tr") == 3 and "/products/CAT-2" in everything["html"]
    assert "Showing 1 to 3 of 3." in everything["summary"]
    nothing = client.get("/products/search.json?q=zzz").get_json()
    assert "No product matches." in nothing["html"]


def test_the_list_shows_stock_on_hand_at_this_site_and_pages_with_a_more_link(web):
    web.ledger.post([Move("receive", sku="DOG-5", location="BER-A-01", qty=7),
                     Move("receive", sku="DOG-5", location="BER-A-02", qty=5)])
    with web.db.atomic("IMMEDIATE"):
        product = web.db.execute_sql("INSERT INTO product (sku, name, created_at, updated_at)"
                                     " VALUES ('ZZ', 'Zebra treats', '', '')").lastrowid
        for i in range(60):
            web.db.execute_sql("INSERT INTO variant (product_id, sku, created_at, updated_at) VALUES (?, ?, '', '')",
                               (product, f"ZZ-{i:03d}"))
    client = web.client("viewer")
    page = client.get("/products?q=DOG-5").get_data(as_text=True)
    assert re.search(r'href="/stock/DOG-5">12</a>', page)
    first = client.get("/products").get_data(as_text=True)
    more = re.search(r'id="product-more" rel="next" href="([^"]+)"', first)
    assert more and first.count('<td><a href="/products/') == 50
    second = client.get(more.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert second.count('<td><a href="/products/') == 13 and 'id="product-more" rel="next" href="" hidden' in second
    listed = set(re.findall(r'href="/products/([A-Z0-9-]+)"', first + second))
    assert len(listed) == 63
    many = client.get("/products/search.json?q=zebra").get_json()
    assert len(many["items"]) == 50 and many["more"] and "offset=50" in many["next"]


def test_edit_errors_keep_the_typed_values_and_name_each_field(web):
    client = web.client("manager")
    data = edit_data(web, client, "DOG-5", product_name="Dog food deluxe", cost_price="12.999",
                     reorder_qty="0", **{"barcodes-0-code": BAD_EAN, "packs-0-name": "case", "packs-0-qty": "x"})
    response = client.post("/products/DOG-5/edit", data=data)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'value="Dog food deluxe"' in page and 'value="12.999"' in page and f'value="{BAD_EAN}"' in page
    for name in ("cost_price", "reorder_qty", "barcodes-0-code", "packs-0-qty"):
        assert re.search(rf'name="{name}"[^>]*aria-invalid="true" aria-describedby="{name}-error"', page), name
        assert re.search(rf'<span class="field-error" id="{name}-error">[^<]+</span>', page), name
    assert "check digit" in page and "Nothing was saved" in page
    assert 'id="product_name-error"' not in page
    assert web.db.execute_sql("SELECT name FROM product WHERE sku = 'DOG'").fetchone()[0] == "Dog food"

    saved = client.post("/products/DOG-5/edit", data=edit_data(web, client, "DOG-5", cost_price="13,49",
                                                               reorder_point="3", reorder_qty="6"))
    assert saved.status_code == 302
    assert web.db.execute_sql("SELECT cost_price, reorder_point, reorder_qty FROM variant WHERE sku = 'DOG-5'"
                              ).fetchone() == (1349, 3, 6)


def test_the_sku_cannot_be_changed_by_the_edit_form(web):
    client = web.client("manager")
    response = client.post("/products/DOG-5/edit", data=edit_data(web, client, "DOG-5", sku="HACK-1",
                                                                  product_sku="HACK"))
    assert response.status_code == 302
    assert web.db.execute_sql("SELECT count(*) FROM variant WHERE sku = 'DOG-5'").fetchone()[0] == 1
    assert web.db.execute_sql("SELECT count(*) FROM product WHERE sku IN ('HACK', 'HACK-1')").fetchone()[0] == 0


def test_a_barcode_of_another_variant_is_a_field_error_not_a_crash(web):
    client = web.client("manager")
    assert client.post("/products/DOG-5/edit", data=edit_data(
        web, client, "DOG-5", **{"barcodes-0-code": EAN})).status_code == 302
    response = client.post("/products/DOG-15/edit", data=edit_data(
        web, client, "DOG-15", variant_name="15 kg bag", **{"barcodes-0-code": EAN}))
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert re.search(r'id="barcodes-0-code-error">[^<]*DOG-5', page)
    assert 'value="15 kg bag"' in page
    assert web.db.execute_sql("SELECT v.sku FROM barcode b JOIN variant v ON v.id = b.variant_id"
                              " WHERE b.code = ?", (EAN,)).fetchone()[0] == "DOG-5"
    twice = client.post("/products/DOG-15/edit", data=edit_data(
        web, client, "DOG-15", **{"barcodes-0-code": OTHER_EAN, "barcodes-1-code": OTHER_EAN}))
    assert twice.status_code == 400 and 'id="barcodes-1-code-error"' in twice.get_data(as_text=True)


def test_barcodes_and_packs_are_removed_and_reorder_points_only_for_this_site(web):
    client = web.client("manager")
    assert client.post("/products/DOG-5/edit", data=edit_data(web, client, "DOG-5", **{
        "packs-0-name": "case", "packs-0-qty": "12", "barcodes-0-code": EAN, "barcodes-1-code": OTHER_EAN,
        "barcodes-1-pack": "case", "reorder-0-location": "BER-A-01", "reorder-0-point": "9"})).status_code == 302
    foreign = client.post("/products/DOG-5/edit", data=edit_data(web, client, "DOG-5", **{
        "reorder-1-location": "WAW-A-01", "reorder-1-point": "1", "reorder-2-location": "NOWHERE",
        "reorder-2-qty": "1"}))
    page = foreign.get_data(as_text=True)
    assert foreign.status_code == 400
    assert re.search(r'id="reorder-1-location-error">[^<]*WAW', page)
    assert 'id="reorder-2-location-error"' in page
    data = edit_data(web, client, "DOG-5", **{"packs-0-remove": "1", "barcodes-1-remove": "1",
                                               "reorder-0-point": ""})
    assert data["barcodes-1-code"] == OTHER_EAN and data["packs-0-name"] == "case"
    assert client.post("/products/DOG-5/edit", data=data).status_code == 302
    assert web.db.execute_sql("SELECT code FROM barcode").fetchall() == [(EAN,)]
    assert web.db.execute_sql("SELECT count(*) FROM pack").fetchone()[0] == 0
    assert web.db.execute_sql("SELECT count(*) FROM reorder_override").fetchone()[0] == 0


def test_a_png_photo_is_stored_small_and_served_and_a_text_file_is_refused(web, tmp_path):
    client = web.client("manager")
    data = edit_data(web, client, "DOG-5")
    data["image"] = (io.BytesIO(png_bytes()), "dog.png")
    response = client.post("/products/DOG-5/edit", data=data, content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    url = web.db.execute_sql("SELECT image_url FROM product WHERE sku = 'DOG'").fetchone()[0]
    assert re.fullmatch(r"/products/images/[0-9a-f]{24}\.(webp|jpg)", url)
    stored = list((tmp_path / "images").iterdir())
    assert len(stored) == 1
    served = client.get(url)
    body = served.get_data()
    served.close()   # the test client leaves the sent file open until closed
    assert served.status_code == 200 and served.mimetype in ("image/webp", "image/jpeg")
    assert "private" in served.headers["Cache-Control"] and "max-age" in served.headers["Cache-Control"]
    with Image.open(io.BytesIO(body)) as picture:
        assert max(picture.size) == 800 and picture.size == (800, 600)
    assert f'src="{url}"' in client.get("/products/DOG-5").get_data(as_text=True)
    assert web.client().get(url).status_code == 302   # photos are for logged-in users only

    fake = edit_data(web, client, "DOG-5", product_name="Dog food X")
    fake["image"] = (io.BytesIO(b"this is not a picture\n" * 10), "evil.png")
    refused = client.post("/products/DOG-5/edit", data=fake, content_type="multipart/form-data")
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert re.search(r'name="image"[^>]*aria-invalid="true"', page) and 'id="image-error"' in page
    assert 'value="Dog food X"' in page
    assert web.db.execute_sql("SELECT image_url, name FROM product WHERE sku = 'DOG'").fetchone() == (url, "Dog food")

    removed = edit_data(web, client, "DOG-5", image_remove="1")
    assert client.post("/products/DOG-5/edit", data=removed).status_code == 302
    assert web.db.execute_sql("SELECT image_url FROM product WHERE sku = 'DOG'").fetchone()[0] is None
    assert list((tmp_path / "images").iterdir()) == []


def test_an_upload_survives_a_form_with_other_errors(web, tmp_path):
    client = web.client("manager")
    data = form_data(client, sku="FISH-1", product_name="Fish flakes", cost_price="abc")
    data["image"] = (io.BytesIO(png_bytes((300, 200))), "fish.png")
    first = client.post("/products/new", data=data, content_type="multipart/form-data")
    page = first.get_data(as_text=True)
    assert first.status_code == 400 and 'id="cost_price-error"' in page
    pending = re.search(r'name="image_pending" value="([^"]+)"', page).group(1)
    second = client.post("/products/new", data=form_data(client, sku="FISH-1", product_name="Fish flakes",
                                                          image_pending=pending))
    assert second.status_code == 302
    assert web.db.execute_sql("SELECT image_url FROM product WHERE sku = 'FISH-1'").fetchone()[0] == \
        f"/products/images/{pending}"
    forged = client.post("/products/new", data=form_data(client, sku="FISH-2", product_name="Fish",
                                                          image_pending="../ledger.db"))
    assert forged.status_code == 302
    assert web.db.execute_sql("SELECT image_url FROM product WHERE sku = 'FISH-2'").fetchone()[0] is None


def test_the_form_refuses_a_post_without_the_csrf_token(web):
    client = web.client("manager")
    data = form_data(client, sku="NOCSRF-1", product_name="No token")
    del data["csrf_token"]
    assert client.post("/products/new", data=data).status_code == 400
    assert web.db.execute_sql("SELECT count(*) FROM variant WHERE sku = 'NOCSRF-1'").fetchone()[0] == 0


def test_two_packs_can_swap_names_in_one_save(web):
    client = web.client("manager")
    assert client.post("/products/DOG-5/edit", data=edit_data(web, client, "DOG-5", **{
        "packs-0-name": "case", "packs-0-qty": "6", "packs-1-name": "box", "packs-1-qty": "12"})).status_code == 302
    data = edit_data(web, client, "DOG-5")
    assert (data["packs-0-name"], data["packs-1-name"]) == ("case", "box")   # listed by quantity
    data.update({"packs-0-name": "box", "packs-1-name": "case"})
    assert client.post("/products/DOG-5/edit", data=data).status_code == 302
    assert web.db.execute_sql("SELECT name, qty FROM pack ORDER BY qty").fetchall() == [("box", 6), ("case", 12)]
