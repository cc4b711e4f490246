"""alerts list|ack|deliveries|deliver|test-email: the alert book and its delivery log from the command line."""

from __future__ import annotations

import getpass

from appliance.commands.output import info, print_json, print_table
from appliance.errors import InvalidInput, UnknownUser


def register(commands) -> None:
    alr = commands.add_parser("alerts", help="list and acknowledge alerts; their email and webhook deliveries"
                              ).add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    p = alr.add_parser("list", help="open alerts, newest first (--all: resolved ones too)")
    p.add_argument("--all", action="store_true", help="resolved alerts too")
    p.add_argument("--kind", metavar="KIND", help="only this kind, e.g. low_stock")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_alerts_list)
    p = alr.add_parser("ack", help="acknowledge an alert (the first acknowledgement is kept)")
    p.add_argument("id", type=int)
    p.add_argument("--user", metavar="LOGIN", help="who saw it (a user of this box; default: the system account)")
    p.set_defaults(handler=cmd_alerts_ack)
    p = alr.add_parser("deliveries", help="the log of alert emails and webhooks, newest first")
    p.add_argument("--failed", action="store_true", help="only deliveries that were given up")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_alerts_deliveries)
    p = alr.add_parser("deliver", help="send the deliveries that are due now (the agent does this by itself)")
    p.set_defaults(handler=cmd_alerts_deliver)
    p = alr.add_parser("test-email", help="send one email now through [smtp], to check the settings")
    p.add_argument("address")
    p.set_defaults(handler=cmd_alerts_test_email)


def cmd_alerts_list(args, ctx) -> int:
    from appliance.notify.alerts import KINDS
    from appliance.notify.book import list_alerts
    if args.kind is not None and args.kind not in KINDS:
        raise InvalidInput(f"unknown alert kind {args.kind!r}; the kinds are {', '.join(KINDS)}", field="kind")
    rows = list_alerts(ctx.app.db.connection(), "all" if args.all else "open", args.kind, limit=10 ** 6)
    if args.json:
        print_json(rows)
        return 0
    print_table(["id", "severity", "kind", "subject", "site", "first seen", "last seen", "state", "acknowledged"],
                [[r["id"], r["severity"], r["kind"], r["subject"], r["site"] or "-", _short(r["first_seen"]),
                  _short(r["last_seen"]), r["state"], r["acknowledged_by"] or "-"] for r in rows])
    return 0


def _short(ts: str | None) -> str:
    return ts[:16].replace("T", " ") if ts else "-"


def cmd_alerts_ack(args, ctx) -> int:
    from appliance.ledger.models import User
    from appliance.notify.book import acknowledge_alert
    app = ctx.app
    user = args.user
    if user is not None:
        if User.get_or_none(User.login == user) is None:
            raise UnknownUser(user)
    else:
        try:
            user = getpass.getuser()
        except (OSError, KeyError):   # no $USER and no passwd entry (some containers)
            user = "cli"
    alert = acknowledge_alert(app, args.id, user)
    if alert["acknowledged_by"] != user:
        info(f"alert {alert['id']} was already acknowledged by {alert['acknowledged_by']} at "
             f"{_short(alert['acknowledged_at'])}")
    else:
        info(f"alert {alert['id']} ({alert['kind']} {alert['subject']}) acknowledged by {user}")
    return 0


def cmd_alerts_deliveries(args, ctx) -> int:
    from appliance.notify.book import list_deliveries
    rows = list_deliveries(ctx.app.db.connection(), failed_only=args.failed, limit=10 ** 6)
    if args.json:
        print_json(rows)
        return 0
    print_table(["id", "alert", "event", "channel", "target", "status", "attempts", "next attempt", "last error"],
                [[r["id"], r["alert_id"] or "-", r["event"], r["channel"], r["target"], r["status"], r["attempts"],
                  _short(r["next_attempt_at"]) if r["status"] == "pending" else "-", r["last_error"] or ""]
                 for r in rows])
    return 0


def cmd_alerts_deliver(args, ctx) -> int:
    from appliance.notify.delivery import deliver_due
    counts = deliver_due(ctx.app)
    info(f"{counts['delivered']} delivered, {counts['retrying']} to retry, {counts['failed']} failed")
    return 0


def cmd_alerts_test_email(args, ctx) -> int:
    from appliance.config.schema import _email
    from appliance.notify.mailer import send_email
    config = ctx.config
    if config.smtp is None:
        raise InvalidInput("email is not configured: add an [smtp] section (host, sender) to the configuration",
                           field="smtp")
    try:
        _email(args.address)
    except ValueError as error:
        raise InvalidInput(f"address {args.address!r}: {error}", field="address") from None
    send_email(config.smtp, [args.address], f"[{config.site.id}] test email from the warehouse appliance",
               f"This is a test email from the warehouse appliance of {config.site.name} ({config.site.id}).\n"
               f"Sent through {config.smtp.host}:{config.smtp.port} ({config.smtp.security}) as "
               f"{config.smtp.sender}.\nAlert emails and purchase orders go out the same way.\n")
    info(f"test email sent to {args.address} via {config.smtp.host}:{config.smtp.port}")
    return 0
