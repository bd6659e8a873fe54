"""The gate's settings: the keys of gate.toml, their defaults, and how a file becomes `GateRules`.

Each key is one `Setting` entry (its type, its default, what it means); a
rules file is validated against them when it is loaded: unknown keys, wrong
types and impossible bounds are errors. A key a file leaves out takes its
default, as train.toml's do: a rule is off only where its default is off or the
file says `"off"`. What each rule does with its settings lives in
`evalsuite/rules/definitions.py`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import tomllib

from evalsuite.errors import InputError

DEFAULT_RULES_FILE = Path("gate.toml")
MAX_RULES_BYTES = 64 << 10
OFF = "off"  # the one word that turns a rule off in gate.toml
# Sections read under their former names, so no team's gate.toml breaks when one is renamed.
FORMER_SECTIONS = {"per_digit": "per_class"}
BUILT_IN = "built-in default"


@dataclass(frozen=True)
class Setting:
    """One key of gate.toml: its type, its default and what it means."""

    key: str
    field: str
    kind: str  # fraction | bool | level | choice
    default: Any = None  # None: the rule is off unless set
    choices: tuple[str, ...] = ()


SETTINGS = (
    Setting("overall.min_improvement", "min_improvement", "fraction", 0.0),
    Setting("overall.min_accuracy", "min_accuracy", "fraction"),
    Setting("per_class.max_drop", "max_drop", "fraction", 0.03),
    Setting("gap_to_overall.max_gap", "max_gap", "fraction"),
    Setting("significance.require", "require_significant", "bool", False),
    Setting("significance.alpha", "alpha", "level", 0.05),
    Setting("significance.inconclusive", "inconclusive", "choice", "pass", ("pass", "fail")),
    Setting("churn.max_newly_wrong_rate", "max_newly_wrong_rate", "fraction"),
    Setting("churn.max_excess_newly_wrong", "max_excess_newly_wrong", "fraction"),
    Setting("registry.on_empty", "on_empty", "choice", "rubber-stamp", ("rubber-stamp", "refuse")),
    Setting("discovery.fail", "discovery_fail", "bool", False),
)
# A rule is on when its threshold is set or its switch is true; these settings are the rules' switches.
RULE_SWITCHES = tuple(setting for setting in SETTINGS if setting.kind in ("fraction", "bool"))
ACROSS_SEEDS_ONLY = {"max_excess_newly_wrong"}  # read by the recipe verdict alone (--seeds N, N > 1)


@dataclass(frozen=True)
class GateRules:
    """Each rule is on when its number is set (None: off)."""

    min_improvement: float | None = 0.0
    min_accuracy: float | None = None
    max_drop: float | None = 0.03
    max_gap: float | None = None
    require_significant: bool = False
    alpha: float = 0.05
    inconclusive: str = "pass"
    max_newly_wrong_rate: float | None = None
    max_excess_newly_wrong: float | None = None  # read across seeds only (--seeds N, N > 1)
    on_empty: str = "rubber-stamp"
    discovery_fail: bool = False  # a regressed discovered slice fails the gate (else it is a warning)
    source: str = "built-in defaults"
    # Where each setting came from: (key, the rules file, or "built-in default").
    origins: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()  # what the verdict should say about the file itself (a former name read)

    def as_dict(self) -> dict:
        values = asdict(self)
        del values["origins"], values["notes"]
        if values["max_excess_newly_wrong"] is None:
            # Off (the default): left out, so the rules, the analysis' fingerprint and every
            # verdict read as they did before the rule existed.
            del values["max_excess_newly_wrong"]
        if not values["discovery_fail"]:
            del values["discovery_fail"]  # the same: off by default, absent
        return values

    def key(self) -> dict:
        """Everything that shapes a verdict (not where the rules came from)."""
        return {k: v for k, v in self.as_dict().items() if k != "source"}

    def in_force(self) -> list[str]:
        """One line per setting: its value (or off) and where it came from, in SETTINGS order."""
        origins = dict(self.origins)
        lines = []
        for setting in SETTINGS:
            value = getattr(self, setting.field)
            shown = OFF if value is None else json_value(value)
            lines.append(f"{setting.key} = {shown} ({origins.get(setting.key, BUILT_IN)})")
        return lines

    def _switched_on(self, fields) -> bool:
        return any(getattr(self, setting.field) not in (None, False) for setting in RULE_SWITCHES if setting.field in fields)

    @property
    def judges_one_seed(self) -> bool:
        """Some rule on reads a single pair of models (churn.max_excess_newly_wrong reads only across seeds)."""
        return self._switched_on({s.field for s in RULE_SWITCHES} - ACROSS_SEEDS_ONLY)

    def check_judges(self, seeds: int) -> None:
        """A rule set that cannot judge this many seeds is refused before anything is written."""
        if seeds == 1 and not self.judges_one_seed:
            raise InputError(
                f"{self.source}: no rule judges a single seed (churn.max_excess_newly_wrong reads only across "
                "seeds); train with --seeds 2 or more, or turn on another rule"
            )

    @property
    def any_rule(self) -> bool:
        return self._switched_on({s.field for s in RULE_SWITCHES})


DEFAULT_TABLE: dict[str, dict[str, Any]] = {}
for _setting in SETTINGS:
    if _setting.default is not None and _setting.kind != "level" and _setting.kind != "choice":
        section, key = _setting.key.split(".")
        DEFAULT_TABLE.setdefault(section, {})[key] = _setting.default


def load_rules(path: Path | None = None) -> GateRules:
    """Rules from `path`, else ./gate.toml, else the built-in defaults."""
    if path is None:
        if not DEFAULT_RULES_FILE.is_file():
            return parse_rules({}, "built-in defaults")
        path = DEFAULT_RULES_FILE
    path = Path(path)
    from evalsuite.safe_files import read_text

    try:
        table = tomllib.loads(read_text(path, MAX_RULES_BYTES, "rules file"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such rules file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read rules ({error})") from None
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"{path}: not valid TOML ({error})") from None
    return parse_rules(table, str(path))


def parse_rules(table: dict, source: str) -> GateRules:
    """Validate a rules table; unknown keys, wrong types and impossible bounds are errors."""
    by_key = {setting.key: setting for setting in SETTINGS}
    sections = sorted({key.split(".")[0] for key in by_key})
    values: dict[str, Any] = {s.field: s.default for s in SETTINGS}
    origins = {s.key: BUILT_IN for s in SETTINGS}
    notes = []
    for former, current in FORMER_SECTIONS.items():
        if former in table:
            if current in table:
                raise InputError(f"{source}: [{former}] and [{current}] are one section (its former and current name)")
            table = {(current if name == former else name): body for name, body in table.items()}
            notes.append(f"{source}: [{former}] is read as [{current}], its current name")
    for section, body in table.items():
        if section not in sections:
            raise InputError(f"{source}: unknown section [{section}] (known: {', '.join(sections)})")
        if not isinstance(body, dict):
            raise InputError(f"{source}: [{section}] must be a table")
        for key, value in body.items():
            name = f"{section}.{key}"
            setting = by_key.get(name)
            if setting is None:
                known = [k.split(".")[1] for k in by_key if k.startswith(section + ".")]
                raise InputError(f"{source}: unknown key {name} (known: {', '.join(known)})")
            values[setting.field] = None if _turned_off(setting, value, source) else _validated(setting, value, source)
            origins[name] = source
    rules = GateRules(**values, source=source, origins=tuple(origins.items()), notes=tuple(notes))
    if not rules.any_rule:
        raise InputError(f"{source}: no rules configured; a gate without rules refuses to bless")
    return rules


def _turned_off(setting: Setting, value: Any, source: str) -> bool:
    """`key = "off"`: the explicit word that turns a rule off (only rules that can be off)."""
    if value != OFF:
        return False
    if setting.kind != "fraction":
        raise InputError(f"{source}: {setting.key} cannot be \"off\" (it is a setting, not a rule)")
    return True


def json_value(value: Any) -> str:
    """A setting's value as gate.toml would spell it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def _validated(setting: Setting, value: Any, source: str) -> Any:
    name = setting.key
    if setting.kind == "bool":
        if not isinstance(value, bool):
            raise InputError(f"{source}: {name} must be true or false, got {value!r}")
        return value
    if setting.kind == "choice":
        if value not in setting.choices:
            raise InputError(f"{source}: {name} must be one of {', '.join(map(repr, setting.choices))}, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{source}: {name} must be a number, got {value!r}")
    if setting.kind == "level":
        if not math.isfinite(value) or not 0.0 < value < 1.0:
            raise InputError(f"{source}: {name} must lie strictly between 0 and 1, got {value!r}")
        return float(value)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InputError(f"{source}: {name} must be a fraction in 0..1, got {value!r}")
    if setting.field == "min_improvement" and value >= 1.0:
        raise InputError(f"{source}: {name} = {value!r} can never be met (accuracy is at most 1)")
    return float(value)
