"""The README and docs/ say what the code does: the rules table and the flags are read from the code's own
declarations, every command uses real flags, every relative link lands, and the README stays a front door."""

from __future__ import annotations

import re
from pathlib import Path

from evalsuite.rules.settings import DEFAULT_TABLE, SETTINGS, parse_rules
from pipeline.run import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")  # the target of [text](target) and ![alt](target)


def prose(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def section(page: Path, title: str) -> str:
    """A page's text under a heading, up to the next heading of the same or a higher level."""
    lines, inside = [], None
    for line in prose(page.read_text("utf-8")):
        heading = re.match(r"(#+) (.*)", line)
        if heading and inside is not None and len(heading.group(1)) <= inside:
            break
        if inside is not None:
            lines.append(line)
        if heading and heading.group(2) == title:
            inside = len(heading.group(1))
    assert inside is not None, f"{page.name} has no section {title!r}"
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
    """A default as the docs write it: off when unset, TOML's spelling otherwise."""
    if value is None:
        return "off"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def test_the_rules_table_lists_every_key_with_its_built_in_default():
    built_in = parse_rules(DEFAULT_TABLE, "built-in defaults")
    rows = table(section(ROOT / "docs" / "rules.md", "Gate rules"), ["rule", "key", "default"])
    documented = {key.strip("`"): default.strip("`") for _, key, default in rows}
    assert documented == {setting.key: shown(getattr(built_in, setting.field)) for setting in SETTINGS}


def test_the_flags_table_lists_exactly_the_flags_evalsuite_takes():
    rows = table(section(ROOT / "docs" / "ci.md", "Flags"), ["flag", "what it does"])
    listed = {flag for row in rows for span in CODE_SPAN.findall(row[0]) for flag in FLAG.findall(span)}
    assert listed == parser_flags()


def command_lines(text: str) -> list[str]:
    """Every `evalsuite ...` or `tox -e gate -- ...` command a page shows, without Beam's options."""
    candidates = CODE_SPAN.findall(text) + [line.split("#")[0] for line in text.splitlines()]
    commands = []
    for candidate in candidates:
        for start in re.finditer(r"(?:^|\s)(evalsuite\s|tox -e gate -- )", candidate):
            own = candidate[start.end() :].split(" -- ")[0]
            commands.append(own)
    return commands


def test_every_evalsuite_command_in_the_readme_and_docs_uses_flags_it_has():
    commands = {page.name: command_lines(page.read_text("utf-8")) for page in PAGES}
    assert commands["README.md"]  # the front door shows how to pass arguments through
    assert sum(map(len, commands.values())) >= 5  # the docs show `tox -e gate -- ...` and `evalsuite ...` often
    used = {flag for found in commands.values() for command in found for flag in FLAG.findall(command)}
    assert used and used <= parser_flags(), used - parser_flags()


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation but hyphens dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings, a repeated heading numbered as GitHub does (-1, -2, ...)."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose(page.read_text("utf-8")):
        heading = re.match(r"#+ (.*)", line)
        if heading:
            base = slug(heading.group(1))
            seen[base] = seen.get(base, -1) + 1
            found.add(base if seen[base] == 0 else f"{base}-{seen[base]}")
    return found


def broken_links(page: Path) -> list[str]:
    """Each relative link or image of a page whose file or heading does not exist."""
    text = CODE_SPAN.sub("", "\n".join(prose(page.read_text("utf-8"))))
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # https:, mailto: - not ours to check offline
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(target)
        elif anchor and (file.suffix != ".md" or anchor not in anchors(file)):
            broken.append(target)
    return broken


def test_every_relative_link_in_the_readme_and_docs_lands():
    for page in PAGES:
        assert broken_links(page) == [], page.name
    assert len(PAGES) >= 9 and "docs/images/report.png" in README.read_text("utf-8")


def test_a_link_to_a_missing_file_or_heading_is_caught(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Gate rules: `blessed:DIR`, again\n\n## Gate rules: `blessed:DIR`, again\n\n"
        "[ok](#gate-rules-blesseddir-again-1) [ok](page.md#gate-rules-blesseddir-again) "
        "[![x](gone.png)](page.md) [no](#gate-rules) [no](other.md) `[code](skipped.md)`\n"
        "```\n[fenced](skipped.md)\n```\n",
        "utf-8",
    )
    assert broken_links(page) == ["gone.png", "#gate-rules", "other.md"]


def test_the_readme_is_a_front_door_of_at_most_250_lines():
    assert len(README.read_text("utf-8").splitlines()) <= 250
