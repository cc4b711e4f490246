"""`appliance` command line. Command names and flags are an interface: tools, tests and the README use them.

Exit status: 0 success; 1 failure (e.g. `check` found differences); 2 invalid input (bad flag, unknown SKU or
location, malformed CSV or config); 3 a stock rule refused the request (message names the rule and what is
available).
"""

from __future__ import annotations

import argparse
import logging
import sys
from functools import cached_property

from appliance import __version__
from appliance.commands import (alerts, data, jobs, printing, purchase_orders, purchasing, scanning, setup, sheets,
                                 sites, stock, sync, users)
from appliance.errors import ApplianceError, EXIT_FAILURE

logger = logging.getLogger(__name__)


class Context:
    """What a command needs, loaded on first use so `--help` and `check-config` touch no database."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._app = None

    @cached_property
    def config_path(self):
        from appliance.config import find_config_path
        return find_config_path(self.args.config)

    @cached_property
    def config(self):
        from appliance.config import load_config
        from appliance.errors import ConfigError
        if self.config_path is None:
            raise ConfigError([
                "no configuration found: give --config PATH, set APPLIANCE_CONFIG, or create ./appliance.toml "
                "or /etc/appliance/appliance.toml (`appliance init --site BER --site-name Berlin` writes one)"])
        return load_config(self.config_path)

    @property
    def app(self):
        if self._app is None:
            from appliance.app import open_app
            self._app = open_app(self.config)
        return self._app

    def close(self) -> None:
        if self._app is not None:
            self._app.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="appliance", description="Warehouse stock appliance: an immutable SQLite ledger of stock movements.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--config", metavar="PATH", help="configuration file (else $APPLIANCE_CONFIG, "
                        "./appliance.toml, /etc/appliance/appliance.toml)")
    parser.add_argument("--log-level", default=None, choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="override [log] level")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (setup, users, data, stock, purchasing, purchase_orders, alerts, jobs, printing, sites, sync, scanning,
                   sheets):
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse: usage errors exit 2, --help/--version exit 0
        return exit_.code if isinstance(exit_.code, int) else EXIT_FAILURE
    logging.basicConfig(level=args.log_level or "WARNING", stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    ctx = Context(args)
    try:
        return args.handler(args, ctx) or 0
    except ApplianceError as error:
        print(f"error[{error.code}]: {error.message}", file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_FAILURE
    finally:
        ctx.close()


if __name__ == "__main__":
    sys.exit(main())
