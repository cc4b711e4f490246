"""agent, sync status, remote reserve|release|list."""

from __future__ import annotations

import logging
import time

from appliance.commands.output import info, print_json, print_table
from appliance.errors import EXIT_FAILURE, EXIT_RULE, InvalidInput
from appliance.ledger.sites import owner_by_prefix
from appliance.sync import rpc
from appliance.sync.status import sync_status


def register(commands) -> None:
    p = commands.add_parser("agent", help="run the box's background process (sync, scheduler); systemd runs it")
    p.set_defaults(handler=cmd_agent)

    sync = commands.add_parser("sync", help="multi-site sync").add_subparsers(
        dest="sync_command", metavar="ACTION", required=True)
    p = sync.add_parser("status", help="per peer: online, last heard, head, applied here, lag, quarantine")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_sync_status)

    remote = commands.add_parser("remote", help="reserve or release stock another site owns").add_subparsers(
        dest="remote_command", metavar="ACTION", required=True)
    p = remote.add_parser("reserve", help="ask the owner of LOCATION to hold QTY of SKU")
    p.add_argument("sku")
    p.add_argument("location")
    p.add_argument("qty", type=int)
    p.add_argument("--ttl", type=int, default=900, metavar="SECONDS", help="how long the owner holds it (900)")
    p.add_argument("--key", help="idempotency key; repeat it to retry the same request (default: a new one)")
    p.add_argument("--wait", type=float, default=10.0, metavar="SECONDS",
                   help="how long to wait for the owner's answer (10); the agent keeps trying after that")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_remote_reserve)
    p = remote.add_parser("release", help="release a remote reservation by its key")
    p.add_argument("key")
    p.add_argument("--wait", type=float, default=10.0, metavar="SECONDS")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_remote_release)
    p = remote.add_parser("list", help="remote requests and their status")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_remote_list)


def cmd_agent(args, ctx) -> int:
    from appliance.agent import run_agent
    level = args.log_level or ctx.config.log.level
    logging.getLogger().setLevel(level)
    # peewee logs every statement at DEBUG: many per movement, which would drown the agent's own lines.
    logging.getLogger("peewee").setLevel(max(logging.getLevelName(level), logging.INFO))
    return run_agent(ctx.app)


def cmd_sync_status(args, ctx) -> int:
    status = sync_status(ctx.app.db.connection())
    if args.json:
        print_json(status)
        return 0
    print(f"site {status['site']}: head {status['head']} (epoch {status['epoch']})"
          + (", RECOVERING: writes refused until own movements are back" if status["recovering"] else "")
          + (f"; the slowest peer has up to {status['slowest_peer_has_of_ours']}"
             if status["slowest_peer_has_of_ours"] is not None else ""))
    print_table(["peer", "state", "last heard", "head", "applied", "lag", "lag s", "quarantine"],
                [[p["site"], p["state"], p["last_heard"] or "never", p["head"], p["applied"], p["lag_movements"],
                  "" if p["lag_seconds"] is None else p["lag_seconds"],
                  p["quarantine_reason"] or ""] for p in status["peers"]])
    for alarm in status["alarms"]:
        info(f"alarm {alarm['kind']} from {alarm['site']} x{alarm['count']} (last {alarm['last_at']}): "
             f"{alarm['detail']}")
    return 0


def _owner(ctx, location: str) -> str:
    conn = ctx.app.db.connection()
    row = conn.execute("SELECT site_id FROM location WHERE code = ?", (location,)).fetchone()
    owner = row[0] if row else owner_by_prefix(
        conn.execute("SELECT id, coalesce(location_prefix, id) FROM site WHERE NOT is_local"), location)
    if owner is None:
        raise InvalidInput(f"no registered site owns location {location}", field="location")
    if owner == ctx.config.site.id:
        raise InvalidInput(f"{location} is this site's own location: use `appliance move reserve`",
                           field="location")
    return owner


def _wait(ctx, key: str, seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        row = next(r for r in rpc.list_requests(ctx.app.db) if r["idem_key"] == key)
        if row["status"] in rpc.FINAL or time.monotonic() >= deadline:
            return row
        time.sleep(0.05)


def _report(args, row: dict) -> int:
    if args.json:
        print_json(row)
    else:
        detail = {"HELD": f"reservation {row['reservation_id']} until {row['expires_at']}",
                  "REJECTED": f"{row['reason']}" + (f" (available {row['available']})"
                                                    if row["available"] is not None else "")}.get(row["status"], "")
        print(f"{row['status']} {row['idem_key']} {detail}".rstrip())
        if row["status"] in ("PENDING", "UNKNOWN"):
            info("no answer from the owner yet; the agent keeps asking with the same key. "
                 f"`appliance remote list` shows the outcome; retry with --key {row['idem_key']}")
    return {"HELD": 0, "RELEASED": 0, "REJECTED": EXIT_RULE, "NOT_HELD": EXIT_RULE}.get(row["status"], EXIT_FAILURE)


def cmd_remote_reserve(args, ctx) -> int:
    owner = _owner(ctx, args.location)
    key = rpc.request_reserve(ctx.app.db, owner, args.sku, args.location, args.qty, ttl_s=args.ttl,
                              idem_key=args.key)
    return _report(args, _wait(ctx, key, args.wait))


def cmd_remote_release(args, ctx) -> int:
    key = rpc.request_release(ctx.app.db, args.key)
    return _report(args, _wait(ctx, key, args.wait))


def cmd_remote_list(args, ctx) -> int:
    rows = rpc.list_requests(ctx.app.db)
    if args.json:
        print_json(rows)
    else:
        print_table(["key", "action", "owner", "sku", "location", "qty", "status", "reservation", "attempts"],
                    [[r["idem_key"], r["action"], r["owner"], r["sku"] or "", r["location"] or "", r["qty"] or "",
                      r["status"], r["reservation_id"] or "", r["attempts"]] for r in rows])
    return 0
