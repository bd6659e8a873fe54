"""What CI reads: verdict.json, junit.xml and summary.md (the verdict and its checks as Markdown).

The three files always describe one judged state. When the gate cannot decide,
they are replaced by an "unjudged" verdict that never says passed.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from evalsuite import progress
from evalsuite.run.atomic import write_bytes_atomic, write_json_atomic, write_text_atomic
from evalsuite.run.folder import RunDir
from evalsuite.tables import verdict_markdown
from gates.verdict import Verdict


def write_outputs(run: RunDir, verdict: Verdict) -> dict[str, Path]:
    paths = {"verdict": run.verdict_path, "junit": run.junit_path, "summary": run.gate_summary_path}
    markdown = verdict_markdown(verdict.as_dict())
    # verdict.json last: a reader that finds it finds the other two of the same state.
    write_bytes_atomic(paths["junit"], junit_xml(verdict))
    write_text_atomic(paths["summary"], markdown)
    write_json_atomic(paths["verdict"], verdict.as_dict())
    return paths


def write_unjudged(run: RunDir, reason: str) -> None:
    """The gate could not decide: say so in every file CI reads (passed is false)."""
    payload = {"state": "unjudged", "passed": False, "reason": reason, "checks": [], "judged": {}}
    suite = ET.Element("testsuite", name="evalsuite.gate", tests="1", failures="0", errors="1", skipped="0")
    case = ET.SubElement(suite, "testcase", classname="gate", name="verdict")
    error = ET.SubElement(case, "error", message=reason, type="Unjudged")
    error.text = reason
    suites = ET.Element("testsuites", tests="1", failures="0", errors="1")
    suites.append(suite)
    markdown = verdict_markdown(None, unjudged=f"the gate could not decide: {reason}")
    write_bytes_atomic(run.junit_path, xml_bytes(suites))
    write_text_atomic(run.gate_summary_path, markdown)
    write_json_atomic(run.verdict_path, payload)
    append_step_summary(markdown)


def append_step_summary(markdown: str) -> None:
    """Append to $GITHUB_STEP_SUMMARY when set; an optional extra never changes the verdict's exit code."""
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if not step_summary:
        return
    try:
        with open(step_summary, "a", encoding="utf-8") as handle:
            handle.write(markdown + "\n")
    except OSError as error:
        progress.warn(
            f"could not append to $GITHUB_STEP_SUMMARY ({step_summary}: {error.strerror}); the verdict stands"
        )


def junit_xml(verdict: Verdict) -> bytes:
    """One test case per check; a failed check is a JUnit <failure>, an inconclusive one is marked skipped.

    With several seeds the cases are the recipe's checks, which the verdict follows
    (the first seed's own checks stay in verdict.json and summary.md).
    """
    checks = verdict.deciding_checks
    kind = "gate.recipe" if verdict.recipe is not None else "gate"
    skipped = [check for check in checks if check.status == "inconclusive" and check.passed]
    suite = ET.Element(
        "testsuite",
        name="evalsuite.gate",
        tests=str(len(checks)),
        failures=str(len(verdict.failures)),
        errors="0",
        skipped=str(len(skipped)),
    )
    for check in checks:
        case = ET.SubElement(
            suite, "testcase", classname=f"{kind}.{check.rule.replace(' ', '_')}", name=f"{check.title} {check.metric}"
        )
        properties = ET.SubElement(case, "properties")
        for name, value in (
            ("slice", check.slice),
            ("status", check.status),
            ("delta", check.delta),
            ("interval", check.interval),
            ("p_value", check.p_value),
            ("counts", check.counts),
            ("per_seed", getattr(check, "per_seed", None)),
        ):
            if value is not None:
                ET.SubElement(properties, "property", name=name, value=str(value))
        if not check.passed:
            failure = ET.SubElement(case, "failure", message=check.message, type="GateFailure")
            failure.text = check.message
        elif check.status == "inconclusive":
            ET.SubElement(case, "skipped", message=f"inconclusive: {check.message}")
        elif check.status == "warn":
            ET.SubElement(case, "system-out").text = f"warning: {check.message}"
    suites = ET.Element("testsuites", tests=suite.get("tests"), failures=suite.get("failures"))
    suites.append(suite)
    return xml_bytes(suites)


# Characters XML 1.0 cannot hold at all; a model path or reason from the command line may carry them.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_bytes(root: ET.Element) -> bytes:
    """The tree as well-formed XML: characters XML cannot hold become U+FFFD."""
    for element in root.iter():
        element.attrib = {key: _XML_ILLEGAL.sub("\ufffd", value) for key, value in element.attrib.items()}
        if element.text:
            element.text = _XML_ILLEGAL.sub("\ufffd", element.text)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
