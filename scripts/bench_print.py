#!/usr/bin/env python3
"""Print benchmark (issue 7): label render time per language, and a 100-label receiving batch end to end.

Prints ONE JSON object on stdout; progress goes to stderr.

1. Render: every label type rendered to ZPL, ESC/POS and the PNG preview at 203 and 300 dpi (50 x 30 mm;
   the sizes of labels.EXAMPLE_SIZES), median of N renders each. Baseline in the same run: filling
   a fixed, hand-written ZPL template for the variant label with str.format (what a printer-specific
   template costs, with none of the fitting, escaping or dpi scaling).
2. Receiving batch: a sent purchase order of 100 lines, 1 unit each, received in one call with labels on
   (`purchasing.service.receive(..., labels=True)`: 100 receiving-label jobs queued in the receipt's
   transaction), and the agent's spooler (its real thread, polling every 0.2 s as in production) sending them
   to a loopback ZPL printer on 127.0.0.1 that answers ~HS like a Zebra. The clock starts before the receive
   call and stops when all 100 jobs are `done` in the database and the printer has all 100 formats.
   Baseline in the same run: the same 100 rendered formats sent over 100 fresh connections by a plain loop,
   each after its own ~HS round trip (the spooler's protocol without the queue).
Target (issue 7): the batch queued and fully sent in <= 2 s.

Options: --quick (fewer renders), --renders N, --status/--no-status (the ~HS query before each job; default on).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(SCRIPTS))

from bench_ledger import machine_info, now_ts, setup_small, target  # noqa: E402
from appliance.app import App  # noqa: E402
from appliance.config import parse_config  # noqa: E402
from appliance.ledger.service import Ledger  # noqa: E402

SITE = "BER"
BATCH = 100
TARGET_S = 2.0
HS_REPLY = (b"\x02030,0,0,0245,000,0,0,0,000,0,0,0\x03\r\n\x02000,0,0,0,0,2,4,0,00000000,1,000\x03\r\n"
            b"\x021234,0\x03\r\n")

TEMPLATE = ("^XA^CI28^PW{w}^LL{h}^FO{x},{y}^A0N,{t},{t}^FD{name}^FS^FO{x},{y2}^A0N,{s},{s}^FD{sku}^FS"
            "^FO{x},{y3}^BY2^BEN,{bh},Y,N^FD{gtin}^FS^FO{x},{y4}^A0N,{t},{t}^FD{price}^FS^PQ1^XZ")


def log(msg: str) -> None:
    print(f"[bench-print {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class LoopbackZebra:
    """A raw-port printer on 127.0.0.1: answers ~HS, counts complete formats."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.server.getsockname()[1]
        self.formats = 0
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                if b"~HS" in data:
                    conn.sendall(HS_REPLY)
                with self.lock:
                    self.formats += data.count(b"^XZ")

    def close(self) -> None:
        self.closed = True
        self.server.close()


def median_us(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return round(statistics.median(times) * 1e6, 1)


def bench_render(n: int) -> dict:
    from appliance.printing.labels import EXAMPLE_SIZES, EXAMPLES
    from appliance.printing.media import Media
    from appliance.printing.render import preview_png, render
    out: dict = {}
    for dpi in (203, 300):
        for label, data in EXAMPLES.items():
            row = {}
            for language in ("zpl", "escpos"):
                w, h = EXAMPLE_SIZES[label][language]
                media = Media(dpi=dpi, width_mm=w, height_mm=h, language=language)
                if label == "case" and language == "escpos":
                    data = {**data, "count": None}   # (30) makes the symbol wider than 72 mm paper
                row[language] = median_us(lambda: render(label, data, media), n)
                row[f"png_{language}"] = median_us(lambda: preview_png(label, data, media), max(3, n // 5))
            out[f"{label}@{dpi}"] = row
    d = EXAMPLES["variant"]
    base = median_us(lambda: TEMPLATE.format(w=400, h=240, x=16, y=16, y2=60, y3=90, y4=200, t=34, s=24, bh=60,
                                             name=d["name"], sku=d["sku"], gtin=(d["gtin"] or "400638133393")[:12],
                                             price="24,99 EUR").encode(), n)
    variant = out["variant@203"]
    return {"us_median": out, "baseline_template_us": base,
            "variant_203_ratio_to_template": {k: round(v / base, 1) for k, v in variant.items()}}


def bench_batch(work: Path, status: bool) -> dict:
    from appliance.printing import queue as print_queue
    from appliance.printing.media import Media
    from appliance.printing.render import render
    from appliance.printing.spooler import Spooler
    from appliance.purchasing import orders, service
    from bench_ledger import bench_key

    printer = LoopbackZebra()
    db_path = work / "print.db"
    db = setup_small(db_path, "FULL", n_skus=BATCH)
    key = bench_key(db)
    config = parse_config({"site": {"id": SITE, "name": "Berlin"}, "database": {"path": str(db_path)},
                           "printer": [{"name": "dock-zebra", "kind": "zpl_tcp", "host": "127.0.0.1",
                                        "port": printer.port, "default": True, "status": status}]},
                          label="bench", base_dir=work)
    app = App(config, db)
    app.__dict__["ledger"] = Ledger(db, SITE, key)
    skus = [row[0] for row in db.execute_sql("SELECT sku FROM variant ORDER BY id LIMIT ?", (BATCH,))]
    with app.ledger.write() as ops:
        supplier = ops.conn.execute("INSERT INTO supplier (name, created_at) VALUES ('Acme', ?) RETURNING id",
                                    (now_ts(),)).fetchone()[0]
    number = service.create(app, supplier=supplier, ship_to="BER-A-01",
                            lines=[service.NewLine(sku, 1, None) for sku in skus])
    service.send(app, number, email=False)
    receipts = [orders.Receipt(i + 1, 1, "", None) for i in range(BATCH)]
    spooler = Spooler(app)
    spooler.start()
    try:
        t0 = time.perf_counter()
        received = service.receive(app, number, receipts, labels=True)
        queued_s = time.perf_counter() - t0
        conn = db.connection()
        deadline = time.monotonic() + 60
        while True:
            done = conn.execute("SELECT count(*) FROM print_job WHERE state = 'done'").fetchone()[0]
            if done == BATCH and printer.formats >= BATCH:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {done} of {BATCH} jobs done after 60 s")
            time.sleep(0.002)
        batch_s = time.perf_counter() - t0
    finally:
        spooler.stop()
    jobs = print_queue.listing(db.connection(), limit=BATCH)
    media = Media.from_printer(config.printers[0])
    payloads = [render(job.label, job.data, media, job.copies) for job in jobs]
    t0 = time.perf_counter()
    for data in payloads:
        with socket.create_connection(("127.0.0.1", printer.port)) as s:
            if status:
                s.sendall(b"~HS")
                got = b""
                while got.count(b"\x03") < 3:
                    got += s.recv(4096)
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            while s.recv(4096):
                pass
    raw_s = time.perf_counter() - t0
    printed = printer.formats
    printer.close()
    app.close()
    return {"labels": BATCH, "jobs_queued": len(received.print_jobs), "queue_in_receive_s": round(queued_s, 3),
            "batch_s": round(batch_s, 3), "baseline_raw_send_s": round(raw_s, 3),
            "ratio_to_raw_send": round(batch_s / raw_s, 2) if raw_s else None, "status_query_each_job": status,
            "formats_received": printed, "sanity_ok": printed == 2 * BATCH and len(received.print_jobs) == BATCH}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer renders: a smoke test of the script")
    ap.add_argument("--renders", type=int, default=None, help="renders per label and language (default 50)")
    ap.add_argument("--status", action=argparse.BooleanOptionalAction, default=True,
                    help="query ~HS before each job, as a zpl_tcp printer does by default")
    args = ap.parse_args(argv)
    n = args.renders or (5 if args.quick else 50)
    out: dict = {"benchmark": "print", "quick": args.quick, "machine": machine_info(Path(tempfile.gettempdir()))}
    log(f"rendering every label type, {n} times per language and dpi")
    out["render"] = bench_render(n)
    with tempfile.TemporaryDirectory(prefix="bench-print-") as work:
        log(f"receiving {BATCH} lines with labels through the spooler to a loopback printer")
        out["batch"] = bench_batch(Path(work), args.status)
    out["targets"] = {"receiving_batch_100_labels_s": target(
        out["batch"]["batch_s"], f"<= {TARGET_S:g}", TARGET_S,
        what="100 receiving labels queued by one receipt and all sent by the spooler to a loopback ZPL printer")}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
