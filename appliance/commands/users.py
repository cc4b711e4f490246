"""user add|list|passwd|disable|enable|role|token, and web (serve the UI with gunicorn)."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from appliance.access import api_tokens
from appliance.access.roles import ROLES
from appliance.access.users import set_active, set_password, set_role
from appliance.commands.output import info, print_json, print_table
from appliance.errors import InvalidInput
from appliance.ledger import sites
from appliance.ledger.models import User


def register(commands) -> None:
    usr = commands.add_parser("user", help="add, list and manage users and their API tokens").add_subparsers(
        dest="user_command", metavar="ACTION", required=True)
    p = usr.add_parser("add", help="add a user")
    p.add_argument("login")
    p.add_argument("--name", default="")
    p.add_argument("--role", default="staff", choices=ROLES)
    p.add_argument("--password-stdin", action="store_true",
                   help="read the web password from standard input (one line) instead of asking")
    p.add_argument("--email", metavar="ADDRESS", help="where alert emails for the user's role go")
    p.set_defaults(handler=cmd_user_add)
    p = usr.add_parser("list", help="list users")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_user_list)
    p = usr.add_parser("passwd", help="set a user's web password (ends their sessions)")
    p.add_argument("login")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(handler=cmd_user_passwd)
    p = usr.add_parser("disable", help="disable a user: no login, no API token, sessions end")
    p.add_argument("login")
    p.set_defaults(handler=cmd_user_disable)
    p = usr.add_parser("enable", help="enable a disabled user again")
    p.add_argument("login")
    p.set_defaults(handler=cmd_user_enable)
    p = usr.add_parser("role", help="change a user's role (ends their sessions)")
    p.add_argument("login")
    p.add_argument("role", choices=ROLES)
    p.set_defaults(handler=cmd_user_role)
    p = usr.add_parser("email", help="set a user's email address for alert emails ('' clears it)")
    p.add_argument("login")
    p.add_argument("address")
    p.set_defaults(handler=cmd_user_email)

    tok = usr.add_parser("token", help="API tokens for scripts and integrations").add_subparsers(
        dest="token_command", metavar="ACTION", required=True)
    p = tok.add_parser("create", help="create a token for a user; it is printed once")
    p.add_argument("login")
    p.add_argument("--name", required=True, help="what uses it, e.g. 'shop sync'")
    p.add_argument("--role", choices=ROLES, help="a narrower role than the user's (default: the user's role)")
    p.set_defaults(handler=cmd_token_create)
    p = tok.add_parser("list", help="list tokens (never the tokens themselves)")
    p.add_argument("--user", metavar="LOGIN", help="only this user's tokens")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_token_list)
    p = tok.add_parser("revoke", help="revoke a token by its id")
    p.add_argument("id", type=int)
    p.set_defaults(handler=cmd_token_revoke)

    p = commands.add_parser("web", help="serve the web UI and JSON API with gunicorn ([web] settings)",
                            description="Run the web UI under gunicorn in the foreground (systemd runs this). "
                            "Reads [web] from the configuration; --bind and --workers override it.")
    p.add_argument("--bind", metavar="HOST:PORT", help="listen here instead of [web] bind")
    p.add_argument("--workers", type=int, metavar="N", help="worker processes instead of [web] workers")
    p.set_defaults(handler=cmd_web)


def _read_password(args, login: str) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise InvalidInput("no terminal to ask for the password: pipe it in with --password-stdin",
                           field="password")
    first = getpass.getpass(f"new web password for {login}: ")
    if getpass.getpass("again: ") != first:
        raise InvalidInput("the two passwords differ", field="password")
    return first


def _checked_email(address: str) -> str | None:
    from appliance.config.schema import _email
    address = address.strip()
    try:
        return _email(address) or None
    except ValueError as error:
        raise InvalidInput(f"email {address!r}: {error}", field="email") from None


def cmd_user_add(args, ctx) -> int:
    password = _read_password(args, args.login) if args.password_stdin else None
    email = _checked_email(args.email) if args.email is not None else None
    user = sites.add_user(ctx.app.db, args.login, name=args.name, role=args.role)
    if email is not None:
        User.update(email=email).where(User.id == user.id).execute()
    if password is not None:
        set_password(ctx.app.db, user.login, password)
    else:
        info(f"{user.login} has no web password yet: `appliance user passwd {user.login}` sets one")
    print(user.login)
    return 0


def cmd_user_list(args, ctx) -> int:
    ctx.app  # opening the app binds the models
    rows = [{"login": u.login, "name": u.name, "role": u.role, "active": u.active,
             "has_password": u.password_hash is not None, "locked_until": u.locked_until}
            for u in User.select().order_by(User.login)]
    if args.json:
        print_json(rows)
    else:
        print_table(["login", "role", "active", "password", "name"],
                    [[r["login"], r["role"], "yes" if r["active"] else "no",
                      "set" if r["has_password"] else "-", r["name"]] for r in rows])
    return 0


def cmd_user_passwd(args, ctx) -> int:
    db = ctx.app.db
    if User.get_or_none(User.login == args.login) is None:
        from appliance.errors import UnknownUser
        raise UnknownUser(args.login)
    set_password(db, args.login, _read_password(args, args.login))
    info(f"password of {args.login} set; their other sessions have ended")
    return 0


def cmd_user_disable(args, ctx) -> int:
    set_active(ctx.app.db, args.login, False)
    info(f"{args.login} disabled: sessions and API tokens stop working")
    return 0


def cmd_user_enable(args, ctx) -> int:
    set_active(ctx.app.db, args.login, True)
    info(f"{args.login} enabled")
    return 0


def cmd_user_role(args, ctx) -> int:
    set_role(ctx.app.db, args.login, args.role)
    info(f"{args.login} is now {args.role}")
    return 0


def cmd_user_email(args, ctx) -> int:
    email = _checked_email(args.address)
    db = ctx.app.db
    with db.atomic("IMMEDIATE"):
        if User.update(email=email).where(User.login == args.login).execute() == 0:
            from appliance.errors import UnknownUser
            raise UnknownUser(args.login)
    info(f"alert emails for {args.login} go to {email}" if email else f"{args.login} has no email address now")
    return 0


def cmd_token_create(args, ctx) -> int:
    row, token = api_tokens.create(ctx.app.db, args.login, args.name, args.role)
    info(f"token {row.id} ({row.name}, role {row.role}) for {row.login}; it is shown only now:")
    print(token)
    return 0


def cmd_token_list(args, ctx) -> int:
    ctx.app
    rows = [{"id": t.id, "user": t.login, "name": t.name, "role": t.role, "created_at": t.created_at,
             "last_used_at": t.last_used_at, "revoked_at": t.revoked_at} for t in api_tokens.listing(args.user)]
    if args.json:
        print_json(rows)
    else:
        print_table(["id", "user", "role", "name", "last used", "revoked"],
                    [[r["id"], r["user"], r["role"], r["name"], r["last_used_at"] or "-", r["revoked_at"] or "-"]
                     for r in rows])
    return 0


def cmd_token_revoke(args, ctx) -> int:
    row = api_tokens.revoke(ctx.app.db, args.id)
    info(f"token {row.id} ({row.name}) of {row.login} revoked")
    return 0


def cmd_web(args, ctx) -> int:
    """Prepare once in this process (migrations, session key), then exec gunicorn, which forks the workers."""
    from appliance.webapp import secret_key
    config = ctx.config
    ctx.app  # migrations run here, once, not raced by the workers
    secret_key.load(config.web.secret_key, config.database.path)
    ctx.close()
    env = dict(os.environ, APPLIANCE_CONFIG=str(ctx.config_path))
    conf = Path(__file__).resolve().parent.parent / "webapp" / "gunicorn_conf.py"
    argv = [sys.executable, "-m", "gunicorn", "-c", str(conf)]
    if args.bind:
        argv += ["--bind", args.bind]
    if args.workers:
        argv += ["--workers", str(args.workers)]
    argv.append("appliance.webapp.wsgi:app")
    info(f"web UI for {config.site.name} on http://{args.bind or config.web.bind}/")
    sys.stdout.flush()
    os.execve(sys.executable, argv, env)
    return 0  # not reached
