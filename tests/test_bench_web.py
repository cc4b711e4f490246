"""scripts/bench_web.py keeps working and keeps its JSON contract (figures are reported, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WEB_TARGETS = {"dashboard_p99_ms", "stock_list_p99_ms", "search_p99_ms", "api_post_ratio"}


def test_bench_web_quick_prints_one_json_object_with_every_target(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "bench_web.py"), "--quick",
                           "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["benchmark"] == "web" and result["quick"] is True
    assert set(result["targets"]) == WEB_TARGETS
    for name, target in result["targets"].items():
        assert isinstance(target["target"], str) and isinstance(target["met"], bool), name
        # Every endpoint answered as expected, so every target has a figure (an endpoint that does not is
        # reported with measured null and its status: that is a failure here).
        assert isinstance(target["measured"], (int, float)) and not isinstance(target["measured"], bool), target
    for page in ("dashboard", "stock_list"):
        assert result["pages"][page]["http"]["statuses"] == {"200": result["pages"][page]["http"]["requests"]}
    assert result["search"]["direct"]["latency_ms"]["n"] > 0
    assert result["posts"]["api"]["statuses"] == {"201": result["posts"]["posts_per_arm_per_round"]
                                                  // result["clients"] // 2 * 2 * result["clients"]}
    # The benchmark's own sanity check: every post of both arms is one movement, and check() found nothing.
    assert result["sanity"]["movements_posted"] == result["sanity"]["movements_expected"]
    assert result["sanity"]["check_empty"] is True
    assert result["server"]["exit_code"] == 0            # gunicorn stopped cleanly on SIGTERM
    # Nothing left behind but the dataset cache.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [Path(result["data"]["cache"]).name, Path(result["data"]["cache"]).name + ".meta.json"])
