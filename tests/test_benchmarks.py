"""The benchmark scripts keep working and keep their JSON contract (figures are reported, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LEDGER_TARGETS = {"post_ratio", "stock_list_page_ms", "one_sku_all_locations_ms", "stock_as_of_ms",
                  "history_page_ms", "check_s", "import_50k_s"}


def quick_run(script: str, benchmark: str, targets: set[str], *args: str, timeout: int = 600) -> dict:
    """Run `scripts/<script> --quick`, check its one JSON object names every target with a figure, a target
    text and met true/false, and return it."""
    done = subprocess.run([sys.executable, str(REPO / "scripts" / script), "--quick", *args],
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["benchmark"] == benchmark
    assert set(result["targets"]) == targets
    for name, target in result["targets"].items():
        assert isinstance(target["measured"], (int, float)) and not isinstance(target["measured"], bool), name
        assert isinstance(target["target"], str) and isinstance(target["met"], bool), name
    return result


def test_bench_ledger_quick_prints_one_json_object_with_every_target(tmp_path):
    result = quick_run("bench_ledger.py", "ledger", LEDGER_TARGETS, "--data-dir", str(tmp_path))
    # The benchmark's own sanity check: every arm wrote the same ledger, and check() found nothing.
    assert result["posts"]["sanity"]["check_empty"] is True


def test_bench_sync_quick_prints_one_json_object_with_every_target():
    import os
    import shutil

    import pytest
    if not (os.access("/usr/sbin/mosquitto", os.X_OK) or shutil.which("mosquitto")):
        pytest.skip("mosquitto is not installed")
    result = quick_run("bench_sync.py", "sync", {"lag_p99_ms", "catchup_mv_per_s", "post_rate_signed_ratio"},
                       timeout=300)
    # The benchmark's own sanity check: WAW holds BER's whole log, and check() found nothing on it.
    assert result["sanity"]["ok"] is True, result["sanity"]
    assert result["sanity"]["waw_check_empty"] is True


def test_bench_scan_quick_prints_one_json_object_with_every_target():
    result = quick_run("bench_scan.py", "scan", {"serial_scan_to_commit_p99_ms", "hid_scan_to_commit_p99_ms"},
                       timeout=300)
    assert set(result["latency_ms"]) == {"serial", "hid", "ledger_post"}
    # Every scan of both paths committed exactly one movement, as many as the ledger-only arm posted.
    assert result["sanity"]["ok"] is True, result["sanity"]


def test_bench_reorder_quick_prints_one_json_object_with_every_target():
    result = quick_run("bench_reorder.py", "reorder",
                       {"commit_to_alert_and_draft_p99_ms", "trigger_added_cost_to_ship_post"})
    # Every crossing raised its alert and drafted its line, once.
    assert result["sanity"]["ok"] is True, result["sanity"]


def test_bench_print_quick_prints_one_json_object_with_every_target():
    result = quick_run("bench_print.py", "print", {"receiving_batch_100_labels_s"}, timeout=300)
    # One receipt queued 100 jobs and the spooler delivered every one of them (and the baseline its 100).
    assert result["batch"]["sanity_ok"] is True, result["batch"]
    assert {"zpl", "escpos", "png_zpl", "png_escpos"} <= set(result["render"]["us_median"]["variant@203"])
