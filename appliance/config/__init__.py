"""Typed configuration: one TOML file, validated against the schema in schema.py at every start.

Import from here; the submodules are an implementation detail.
"""

from appliance.config.loader import (
    ENV_VAR,
    SEARCH_PATHS,
    find_config_path,
    load_config,
    parse_config,
    reference_markdown,
    render_effective,
    starter_config,
)
from appliance.config.schema import (
    Config, DatabaseConfig, LogConfig, ScannerConfig, ScanningConfig, SiteConfig, WebConfig, currency_digits,
)
from appliance.config.secrets import read_secret
from appliance.errors import ConfigError

__all__ = [
    "Config", "ConfigError", "DatabaseConfig", "ENV_VAR", "LogConfig", "SEARCH_PATHS", "ScannerConfig",
    "ScanningConfig", "SiteConfig", "WebConfig",
    "currency_digits", "find_config_path", "load_config", "parse_config", "read_secret", "reference_markdown",
    "render_effective", "starter_config",
]
