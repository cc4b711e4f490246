"""The scan log keeps every raw scan exactly, with what became of it."""

from __future__ import annotations

import json

import pytest

from appliance.scanning import scan_log
from appliance.scanning.scan import Scan, visible


def log(db, scan: Scan, outcome: str, message: str = "", **kw) -> int:
    with db.atomic("IMMEDIATE"):
        conn = db.connection()
        scan_id = scan_log.insert(conn, scan, kind=kw.pop("kind", None), interpretation=kw.pop("interpretation", None))
        scan_log.finish(conn, scan_id, outcome, message, **kw)
    return scan_id


def test_raw_scans_are_kept_exactly_and_shown_with_visible_control_characters(db):
    raw = "]C10109501101530003\x1d21X\r"
    first = log(db, Scan("dock-1", "hid:gun", raw, 1_700_000_000.25), "unresolved", "unknown barcode",
                kind="gtin", interpretation={"kind": "gtin"})
    log(db, Scan("packing", "serial:/dev/ttyUSB0", "BER-A-01", 1_700_000_001.0), "ok", movement_ids=[7, 8])
    rows = scan_log.recent(db)
    assert [r["station"] for r in rows] == ["packing", "dock-1"]
    dock = rows[1]
    assert dock["raw"] == raw and dock["raw_visible"] == "]C10109501101530003<GS>21X<CR>"
    assert dock["at"] == "2023-11-14T22:13:20.250000Z"
    assert rows[0]["movement_ids"] == [7, 8]
    assert [r["id"] for r in scan_log.recent(db, unresolved=True)] == [first]
    assert [r["id"] for r in scan_log.recent(db, station="packing")] == [rows[0]["id"]]
    stored = db.execute_sql("SELECT interpretation FROM scan_log WHERE id = ?", (first,)).fetchone()[0]
    assert json.loads(stored) == {"kind": "gtin"}
    scan_log.dismiss(db, first)
    assert scan_log.recent(db, unresolved=True) == []
    with pytest.raises(scan_log.ScanNotFound):
        scan_log.dismiss(db, 999)


def test_an_unknown_outcome_is_refused(db):
    with pytest.raises(ValueError, match="outcome 'fine'"):
        log(db, Scan("s", "d", "x", 0.0), "fine")
    assert scan_log.recent(db) == []   # and the transaction that tried it wrote nothing


def test_visible_names_common_controls():
    assert visible("a\x1db\x1ec\x04d\x07\t\n") == "a<GS>b<RS>c<EOT>d<0x07><TAB><LF>"
