"""The one TOML file: where it is, reading and validating it, and writing it back out.

Validation walks the schema (see schema.py) rather than the file, so every section and key is checked the same
way, and it collects every error before raising: someone at a box with a serial console fixes them all in one
edit instead of one per restart.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
from pathlib import Path
from typing import Any, Callable, TypeVar, overload

from appliance.config.schema import (
    Check, Config, applies, arrays, is_optional_section, is_required, keys, sections, toml_name,
)
from appliance.config.secrets import read_secret
from appliance.errors import ConfigError

ENV_VAR = "APPLIANCE_CONFIG"
# Relative entries are relative to the working directory: that is what `./appliance.toml` means.
SEARCH_PATHS = (Path("appliance.toml"), Path("/etc/appliance/appliance.toml"))

T = TypeVar("T")


def find_config_path(explicit: str | Path | None = None, *, missing_ok: bool = False) -> Path | None:
    """The configuration file: `explicit` (--config), else $APPLIANCE_CONFIG, else the first of SEARCH_PATHS
    that exists, else None. Returned absolute.

    A path named by the flag or the variable must exist (ConfigError naming it) unless `missing_ok`, which
    returns it anyway: `appliance init` writes the file there.
    """
    for given, origin in ((explicit, "--config"), (os.environ.get(ENV_VAR), f"${ENV_VAR}")):
        if given is not None and given != "":
            path = Path(given).absolute()
            if not missing_ok and not path.is_file():
                problem = "not a file" if path.exists() else "no such file"
                raise ConfigError([f"{path}: {problem} (given by {origin})"])
            return path
    for candidate in SEARCH_PATHS:
        if candidate.is_file():
            return candidate.absolute()
    return None


@overload
def load_config(path: str | Path) -> Config: ...
@overload
def load_config(path: str | Path, *, schema: type[T]) -> T: ...


def load_config(path: str | Path, *, schema: type = Config) -> Any:
    """Read and validate `path`. Raises ConfigError listing every problem, each naming file, key and reason."""
    path = Path(path).absolute()
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except OSError as error:
        raise ConfigError([f"{path}: cannot read: {error.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as error:
        # tomllib's message ends with "(at line L, column C)".
        raise ConfigError([f"{path}: invalid TOML: {error}"]) from None
    return parse_config(data, label=str(path), base_dir=path.parent, source=path, schema=schema)


def parse_config(data: dict[str, Any], *, label: str, base_dir: Path, source: Path | None = None,
                 schema: type = Config) -> Any:
    """Validate parsed TOML against `schema`. Relative paths are resolved against `base_dir`, never the cwd."""
    errors: list[str] = []
    tables = {toml_name(f): (f, cls) for f, cls in sections(schema)}
    lists = {toml_name(f): (f, cls) for f, cls in arrays(schema)}
    names = _known_names(schema)
    optional = {toml_name(f) for f, _ in sections(schema) if is_optional_section(f)}
    for name, value in data.items():
        if name in tables or name in lists:
            continue
        if isinstance(value, dict):
            errors.append(f"{label}: unknown section [{name}]; known sections: {', '.join(names)}")
        elif isinstance(value, list) and value and all(isinstance(entry, dict) for entry in value):
            errors.append(f"{label}: unknown array [[{name}]]; known sections: {', '.join(names)}")
        else:
            errors.append(f"{label}: unknown key {name} outside any section; known sections: {', '.join(names)}")
    values: dict[str, Any] = {}
    for name, (f, cls) in tables.items():
        if name in optional and name not in data:
            continue   # an optional section that is absent turns its feature off
        table = data.get(name, {})
        if not isinstance(table, dict):
            errors.append(f"{label}: {name} = {table!r}: must be a section, written [{name}]")
            continue
        section = _parse_section(name, cls, table, label, base_dir, errors)
        if section is not None:
            values[f.name] = section
    for name, (f, cls) in lists.items():
        entries = data.get(name, [])
        if isinstance(entries, dict):
            errors.append(f"{label}: [{name}] must be written [[{name}]]: an array of tables, one per entry")
            continue
        if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
            errors.append(f"{label}: {name} = {entries!r}: must be an array of tables, written [[{name}]]")
            continue
        parsed = [_parse_section(f"{name}[{i}]", cls, table, label, base_dir, errors)
                  for i, table in enumerate(entries, 1)]
        _check_unique(name, cls, entries, parsed, label, errors)
        values[f.name] = tuple(parsed)
    if errors:
        raise ConfigError(errors)
    if any(f.name == "source" for f in dataclasses.fields(schema)):
        values["source"] = source
    return schema(**values)


def _known_names(schema: type) -> list[str]:
    """Section and array names in the schema's order, for "known sections: ..." messages."""
    found = {f.name: toml_name(f) for f, _ in [*sections(schema), *arrays(schema)]}
    return [found[f.name] for f in dataclasses.fields(schema) if f.name in found]


def _parse_section(name: str, cls: type, table: dict[str, Any], label: str, base_dir: Path,
                   errors: list[str]) -> Any:
    """One section, or one entry of an array (`name` is then `scanner[2]`, 1-based as people count)."""
    before = len(errors)
    where = f"{label}: {name}."
    fields = keys(cls)
    known = [f.name for f, _ in fields]
    for key in table:
        if key not in known:
            errors.append(f"{label}: unknown key {name}.{key}; known keys: {', '.join(known)}")
    kind = _kind_of(fields, table, base_dir)
    kwargs: dict[str, Any] = {}
    for f, type_ in fields:
        if f.metadata.get("secret"):
            if f.name in table:
                # No value in the message: it is a secret, and messages end up in logs.
                errors.append(f"{where}{f.name}: secrets are never read from the config file; "
                              f"{_secret_origin(f)}")
                continue
            try:
                kwargs[f.name] = read_secret(f.metadata["credential"], f.metadata["env"])
            except ConfigError as error:
                errors.extend(error.errors)
            continue
        if f.name not in table:
            if is_required(f):
                errors.append(f"{where}{f.name} is required: {f.metadata['doc']}")
            elif kind in f.metadata.get("required_for", ()):
                errors.append(f"{where}{f.name} is required for kind {kind}: {f.metadata['doc']}")
            continue
        value = table[f.name]
        if not applies(f, kind):
            errors.append(f"{where}{f.name} = {value!r}: not a key of kind {kind}; it is for kind "
                          f"{' or '.join(f.metadata['kinds'])}")
            continue
        check = f.metadata.get("check")
        if isinstance(check, dict):   # one key, a different meaning per kind (a terminator: a key or a byte)
            check = check.get(kind)
        try:
            kwargs[f.name] = _convert(type_, value, base_dir, check)
        except ValueError as error:
            errors.append(f"{where}{f.name} = {value!r}: {error}")
    return cls(**kwargs) if len(errors) == before else None


def _kind_of(fields: list[tuple[dataclasses.Field, type]], table: dict[str, Any], base_dir: Path) -> str | None:
    """The valid `kind` of a section that has one, else None: then no key is refused for its kind (the bad or
    missing kind is the error reported, not every key after it)."""
    for f, type_ in fields:
        if f.name == "kind" and "kind" in table:
            try:
                return _convert(type_, table["kind"], base_dir, f.metadata.get("check"))
            except ValueError:
                return None
    return None


def _check_unique(name: str, cls: type, entries: list[dict[str, Any]], parsed: list[Any], label: str,
                  errors: list[str]) -> None:
    """Values of `unique` keys given twice; compared after normalising (0C2E:0B61 is 0c2e:0b61)."""
    for f, _ in keys(cls):
        if not f.metadata.get("unique"):
            continue
        first: dict[Any, int] = {}
        for i, (table, entry) in enumerate(zip(entries, parsed), 1):
            value = getattr(entry, f.name) if entry is not None and f.name in table else None
            if value in (None, ""):
                continue
            if value in first:
                errors.append(f"{label}: {name}[{i}].{f.name} = {table[f.name]!r}: already used by "
                              f"{name}[{first[value]}]")
            else:
                first[value] = i


_EXPECTED = {str: "a string", Path: "a string (a path)", int: "an integer", float: "a number",
             bool: "a boolean (true or false)"}


def _convert(type_: type, value: Any, base_dir: Path, check: Check | None) -> Any:
    if type_ not in _EXPECTED:
        raise TypeError(f"config fields of type {type_} are not supported")
    # bool is a subclass of int in Python, but `busy_timeout_ms = true` is a mistake, not 1.
    if type_ is bool:
        ok = isinstance(value, bool)
    elif type_ is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif type_ is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ValueError(f"must be {_EXPECTED[type_]}, not {_kind(value)}")
    if type_ is float:
        value = float(value)
    if type_ is Path:
        if not value:
            raise ValueError("must not be empty")
        value = base_dir / value  # an absolute value replaces base_dir
    return check(value) if check is not None else value


def _kind(value: Any) -> str:
    for cls, kind in ((bool, "a boolean"), (int, "an integer"), (float, "a float"), (str, "a string"),
                      (dict, "a table"), (list, "an array")):
        if isinstance(value, cls):
            return kind
    return "a date/time"


# Writing ---------------------------------------------------------------------------------------------------

def toml_value(value: Any) -> str:
    """`value` as a TOML literal (strings, paths, integers, floats, booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else
                                                          "inf" if value > 0 else "-inf")
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        # JSON string escapes are TOML basic-string escapes, except that TOML also forbids a raw DEL.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


_DEFAULT = object()


def render_effective(config: Any) -> str:
    """The effective configuration as loadable TOML: every key, defaults filled in, each under a comment with
    its description. Secrets appear only as commented `"***"` lines, so the output loads back unchanged."""
    origin = f" of {toml_value(str(config.source))}" if getattr(config, "source", None) else ""
    header = [f"# Effective configuration{origin}: defaults filled in, secrets masked."]
    return _render(type(config), header,
                   lambda section, f: _DEFAULT if getattr(config, section) is None
                   else getattr(getattr(config, section), f.name),
                   absent={f.name for f, _ in sections(type(config)) if getattr(config, f.name) is None},
                   entries_of=lambda name: getattr(config, name))


def starter_config(site_id: str, site_name: str, db_path: str | Path) -> str:
    """The configuration `appliance init` writes for a new box; other keys appear commented at their defaults,
    arrays (scanners) as one commented example entry per kind.
    A relative `db_path` stays relative, i.e. relative to the written file. Raises ConfigError if invalid."""
    given = {"site": {"id": site_id, "name": site_name}, "database": {"path": str(db_path)}}
    header = [
        "# Warehouse stock appliance configuration, written by `appliance init`.",
        "# Commented keys show their defaults; `appliance check-config` validates this file and prints it.",
        "# Relative paths are relative to this file. Passwords never go here: they come from",
        "# $CREDENTIALS_DIRECTORY (systemd LoadCredential=) or the environment.",
    ]
    text = _render(Config, header, lambda section, f: given.get(section, {}).get(f.name, _DEFAULT),
                   absent={f.name for f, _ in sections(Config) if is_optional_section(f)})
    # Refuse to write a file the appliance would then refuse to start with.
    parse_config(tomllib.loads(text), label="new configuration", base_dir=Path("/"))
    return text


def _render(schema: type, header: list[str], value_of: Callable[[str, dataclasses.Field], Any],
            absent: set[str] = frozenset(), entries_of: Callable[[str], tuple] = lambda name: ()) -> str:
    """`absent`: optional sections written commented out, so that uncommenting them turns the feature on.
    `entries_of(field name)`: the entries of an array; none writes its examples commented out instead."""
    lines = list(header)
    tables = dict(sections(schema))
    lists = dict(arrays(schema))
    for section in dataclasses.fields(schema):
        if section in lists:
            _render_array(lines, section, lists[section], entries_of(section.name))
            continue
        if section not in tables:
            continue
        off = "# " if section.name in absent else ""
        lines.append("")
        if "doc" in section.metadata:
            lines.append(f"# {section.metadata['doc']}")
        lines.append(f"{off}[{section.name}]")
        for f, _ in keys(tables[section]):
            lines.append(f"# {f.metadata['doc']}")
            value = value_of(section.name, f)
            if f.metadata.get("secret"):
                shown = "not set" if value in (None, _DEFAULT) else '"***"'
                lines.append(f"# {f.name} = {shown}  ({_secret_origin(f)})")
            elif value is _DEFAULT or value is None:   # None: an optional key that is not set
                lines.append(f"# {f.name} = {_default_text(f)}")
            else:
                lines.append(f"{off}{f.name} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def _render_array(lines: list[str], array: dataclasses.Field, cls: type, entries: tuple) -> None:
    """Each entry as a `[[name]]` block with the keys of its kind; without entries, the schema's examples
    commented out (one per kind), so that uncommenting one adds a working entry."""
    name = toml_name(array)
    lines.extend(["", f"# {array.metadata['doc']}"])
    off = "" if entries else "# "
    for entry in entries or [cls(**example) for example in array.metadata.get("examples", ())]:
        if lines[-1]:
            lines.append("")
        lines.append(f"{off}[[{name}]]")
        kind = getattr(entry, "kind", None)
        for f, _ in keys(cls):
            if f.metadata.get("kinds") is not None and not applies(f, kind):
                continue   # a key of another kind would be an error when loaded back
            lines.append(f"# {f.metadata['doc']}")
            value = getattr(entry, f.name)
            if value is None:
                lines.append(f"# {f.name} = {_default_text(f)}")
            else:
                lines.append(f"{off}{f.name} = {toml_value(value)}")


def reference_markdown(schema: type = Config) -> str:
    """A Markdown table of every key, its default and its description: the README's configuration reference.
    Keys of arrays read `[[scanner]] key`; a key that belongs to some kinds only says which."""
    rows = ["| key | default | description |", "| --- | --- | --- |"]
    tables = dict(sections(schema))
    lists = dict(arrays(schema))
    for section in dataclasses.fields(schema):
        cls = tables.get(section) or lists.get(section)
        if cls is None:
            continue
        label = f"[[{toml_name(section)}]]" if section in lists else f"[{toml_name(section)}]"
        for f, _ in keys(cls):
            if f.metadata.get("secret"):
                default = (f"secret, from `$CREDENTIALS_DIRECTORY/{f.metadata['credential']}` "
                           f"or `${f.metadata['env']}`")
            elif is_required(f):
                default = "**required**"
            elif f.metadata.get("required_for"):
                default = f"**required** ({', '.join(f.metadata['required_for'])})"
            else:
                default = f.metadata.get("default_doc") or f"`{_default_text(f)}`"
            # Descriptions are prose, not Markdown: `<GS>` would vanish as an HTML tag, `*Honeywell*` turn italic.
            doc = f.metadata["doc"].replace("*", "\\*").replace("<", "&lt;")
            if f.metadata.get("kinds") is not None:
                doc = f"{' and '.join(f.metadata['kinds'])}: {doc}"
            cells = [f"`{label} {f.name}`", default, doc]
            rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"


def _default_text(f: dataclasses.Field) -> str:
    if f.metadata.get("default_doc"):
        return f"({f.metadata['default_doc']})"
    if is_required(f):
        return "(required)"
    default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
    return toml_value(default)


def _secret_origin(f: dataclasses.Field) -> str:
    return (f"secret: put it in $CREDENTIALS_DIRECTORY/{f.metadata['credential']} (systemd LoadCredential=) "
            f"or ${f.metadata['env']}")
