"""The README says what the code does: its rules table and its flags are read from the code's own declarations."""

from __future__ import annotations

import re
from pathlib import Path

from evalsuite.rule_settings import DEFAULT_TABLE, SETTINGS, parse_rules
from pipeline.run import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"
FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")


def section(title: str) -> str:
    """The README's text under a heading, up to the next heading of the same or a higher level."""
    lines, inside, fenced = [], None, False
    for line in README.read_text("utf-8").splitlines():
        fenced = fenced != line.startswith("```")
        heading = re.match(r"(#+) (.*)", line) if not fenced else None
        if heading and inside is not None and len(heading.group(1)) <= inside:
            break
        if inside is not None:
            lines.append(line)
        if heading and heading.group(2) == title:
            inside = len(heading.group(1))
    assert inside is not None, f"README has no section {title!r}"
    return "\n".join(lines)


def table(text: str, header: list[str]) -> list[list[str]]:
    """The body rows' cells of the Markdown table in `text` whose header row is `header`."""
    block: list[str] = []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            block.append(line)
            continue
        rows = [[cell.strip() for cell in row.strip().strip("|").split("|")] for row in block]
        if rows and rows[0] == header:
            return rows[2:]
        block = []
    raise AssertionError(f"no table with the header {header}")


def parser_flags() -> set[str]:
    return {flag for action in build_parser()._actions for flag in action.option_strings} - {"-h", "--help"}


def shown(value) -> str:
    """A default as the README writes it: off when unset, TOML's spelling otherwise."""
    if value is None:
        return "off"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def test_the_rules_table_lists_every_key_with_its_built_in_default():
    built_in = parse_rules(DEFAULT_TABLE, "built-in defaults")
    rows = table(section("Gate rules"), ["rule", "key", "default"])
    documented = {key.strip("`"): default.strip("`") for _, key, default in rows}
    assert documented == {setting.key: shown(getattr(built_in, setting.field)) for setting in SETTINGS}


def test_the_flags_table_lists_exactly_the_flags_evalsuite_takes():
    rows = table(section("Flags"), ["flag", "what it does"])
    listed = {flag for row in rows for span in CODE_SPAN.findall(row[0]) for flag in FLAG.findall(span)}
    assert listed == parser_flags()


def command_lines(text: str) -> list[str]:
    """Every `evalsuite ...` or `tox -e gate -- ...` command the README shows, without Beam's options."""
    candidates = CODE_SPAN.findall(text) + [line.split("#")[0] for line in text.splitlines()]
    commands = []
    for candidate in candidates:
        for start in re.finditer(r"(?:^|\s)(evalsuite\s|tox -e gate -- )", candidate):
            own = candidate[start.end() :].split(" -- ")[0]
            commands.append(own)
    return commands


def test_every_evalsuite_command_in_the_readme_uses_flags_it_has():
    commands = command_lines(README.read_text("utf-8"))
    assert len(commands) >= 3  # the reader sees `tox -e gate -- ...` and `evalsuite ...` more than once
    used = {flag for command in commands for flag in FLAG.findall(command)}
    assert used and used <= parser_flags(), used - parser_flags()
