"""What CI reads: verdict.json, junit.xml and a Markdown table for pull requests."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

from evalsuite.formatting import esc, fmt, interval_text
from evalsuite.rundir import RunDir, write_bytes_atomic, write_json_atomic, write_text_atomic
from gates.verdict import Verdict


def write_outputs(run: RunDir, verdict: Verdict) -> dict[str, Path]:
    paths = {
        "verdict": run.gate_dir / "verdict.json",
        "junit": run.gate_dir / "junit.xml",
        "summary": run.gate_dir / "summary.md",
    }
    write_json_atomic(paths["verdict"], verdict.as_dict())
    write_bytes_atomic(paths["junit"], junit_xml(verdict))
    markdown = summary_markdown(verdict)
    write_text_atomic(paths["summary"], markdown)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as handle:
            handle.write(markdown + "\n")
    return paths


def junit_xml(verdict: Verdict) -> bytes:
    """One test case per check; a failed check is a JUnit <failure>."""
    suite = ET.Element(
        "testsuite",
        name="evalsuite.gate",
        tests=str(len(verdict.checks)),
        failures=str(len(verdict.failures)),
        errors="0",
        skipped="0",
    )
    for check in verdict.checks:
        case = ET.SubElement(
            suite, "testcase", classname=f"gate.{check.rule.replace(' ', '_')}", name=f"{check.slice} {check.metric}"
        )
        if not check.passed:
            failure = ET.SubElement(case, "failure", message=check.message, type="GateFailure")
            failure.text = check.message
    suites = ET.Element("testsuites", tests=suite.get("tests"), failures=suite.get("failures"))
    suites.append(suite)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True)


def summary_markdown(verdict: Verdict) -> str:
    """A table fit for a pull-request comment; text from data is escaped."""
    state = "PASSED" if verdict.passed else "FAILED"
    lines = [
        f"### Model gate {state}: `{esc(verdict.candidate['label'])}` vs `{esc(verdict.baseline['label'])}`",
        "",
        f"{len(verdict.checks) - len(verdict.failures)} of {len(verdict.checks)} checks passed "
        f"on {verdict.eval_examples} evaluation examples.",
        "",
        "| check | slice | baseline | candidate | delta | 95% CI of delta | rule | result |",
        "|---|---|---:|---:|---:|---|---|---|",
    ]
    for check in verdict.checks:
        lines.append(
            f"| {esc(check.rule)} | {esc(check.slice)} | {fmt(check.baseline)} | {fmt(check.candidate)} | "
            f"{fmt(check.delta, True)} | {interval_text(check.interval)} | {esc(check.threshold)} | {'pass' if check.passed else '**FAIL**'} |"
        )
    for note in verdict.notes:
        lines += ["", f"Note: {esc(note)}"]
    return "\n".join(lines) + "\n"
