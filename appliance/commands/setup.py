"""init, migrate, check-config, location."""

from __future__ import annotations

from pathlib import Path

from appliance.commands.output import info, print_json, print_table
from appliance.errors import InvalidInput
from appliance.ledger import sites
from appliance.ledger.models import Location
from appliance.sync import registry


def register(commands) -> None:
    p = commands.add_parser("init", help="create the database, the local site and a first manager user",
                            description="Create the database, the local site and a first manager (`admin`). "
                            "Without a config file it writes one (to --config or ./appliance.toml).")
    p.add_argument("--site", help="site id, 2-8 upper-case letters/digits (e.g. BER); default: the config's")
    p.add_argument("--site-name", help="human name of the site (e.g. Berlin)")
    p.add_argument("--db", metavar="PATH", help="database path for a newly written config "
                   "(default: data/appliance.db beside the config)")
    p.add_argument("--admin", default="admin", metavar="LOGIN", help="login of the first manager (default admin)")
    p.set_defaults(handler=cmd_init)

    p = commands.add_parser("migrate", help="apply pending database migrations (also done at every start)")
    p.set_defaults(handler=cmd_migrate)

    p = commands.add_parser("check-config", help="validate the configuration and print it, secrets masked")
    p.set_defaults(handler=cmd_check_config)

    loc = commands.add_parser("location", help="add and list locations").add_subparsers(
        dest="location_command", metavar="ACTION", required=True)
    p = loc.add_parser("add", help="add a location of this site")
    p.add_argument("code", help="e.g. BER-A-01-03: upper-case letters, digits, '-' and '.' only")
    p.add_argument("--name", default="")
    p.add_argument("--kind", default="bin", choices=Location.KINDS)
    p.add_argument("--parent", metavar="CODE", help="enclosing location (zone, warehouse)")
    p.set_defaults(handler=cmd_location_add)
    p = loc.add_parser("list", help="list locations")
    p.add_argument("--site", help="only this site's locations")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_location_list)


def cmd_init(args, ctx) -> int:
    from appliance.config import find_config_path, starter_config
    target = find_config_path(args.config, missing_ok=True) or Path("appliance.toml").absolute()
    if not target.exists():
        if not args.site:
            raise InvalidInput("no configuration found: give --site (and --site-name) to create one", field="site")
        if not sites.SITE_ID.fullmatch(args.site):
            raise InvalidInput(f"site id {args.site!r} must be 2-8 upper-case letters/digits starting with a "
                               "letter, e.g. BER", field="site")
        db_path = args.db or "data/appliance.db"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(starter_config(args.site, args.site_name or args.site, db_path), encoding="utf-8")
        info(f"wrote configuration {target}")
    ctx.config_path = target
    config = ctx.config
    site_id = args.site or config.site.id
    if site_id != config.site.id:
        raise InvalidInput(f"--site {site_id} differs from the configured site {config.site.id} "
                           f"({ctx.config_path})", field="site")
    name = args.site_name or config.site.name
    created = sites.init_site(ctx.app.db, site_id, name, admin_login=args.admin)
    key, new_key = registry.ensure_site_key(ctx.app.db, site_id, config.database.path)
    state = "initialised" if created else "was already initialised"
    info(f"site {site_id} ({name}) {state}: database {config.database.path}, config {ctx.config_path}")
    if created:
        info(f"first manager user: {args.admin}")
    if new_key:
        info(f"site key {key.kid} written to {registry.key_path(config.database.path)} (mode 0600; back it up)")
    print(config.database.path)
    return 0


def cmd_migrate(args, ctx) -> int:
    from appliance.ledger import migrate
    from appliance.ledger.db import open_db
    config = ctx.config
    db = open_db(config.database.path, synchronous=config.database.synchronous,
                 busy_timeout_ms=config.database.busy_timeout_ms, apply_migrations=False)
    try:
        applied = migrate.migrate(db.connection(), config.database.path)
        versions = migrate.applied_versions(db.connection())
    finally:
        db.close()
    for m in applied:
        print(f"applied {m.version:04d}_{m.name}")
    info(f"schema at version {max(versions) if versions else 0}; {len(applied)} migration(s) applied")
    return 0


def cmd_check_config(args, ctx) -> int:
    from appliance.config import render_effective
    config = ctx.config
    info(f"configuration {ctx.config_path} is valid")
    print(render_effective(config), end="")
    return 0


def cmd_location_add(args, ctx) -> int:
    loc = sites.add_location(ctx.app.db, ctx.config.site.id, args.code, name=args.name, kind=args.kind,
                             parent=args.parent)
    print(loc.code)
    return 0


def cmd_location_list(args, ctx) -> int:
    ctx.app  # opening the app binds the models
    locations = list(Location.select().order_by(Location.code))
    codes = {loc.id: loc.code for loc in locations}
    rows = [{"code": loc.code, "site": loc.site_id, "name": loc.name, "kind": loc.kind,
             "parent": codes.get(loc.parent_id), "active": loc.active}
            for loc in locations if not args.site or loc.site_id == args.site]
    if args.json:
        print_json(rows)
    else:
        print_table(["code", "site", "kind", "parent", "name"],
                    [[r["code"], r["site"], r["kind"], r["parent"], r["name"]] for r in rows])
    return 0
