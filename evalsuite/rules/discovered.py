"""The rule "discovered drop": each slice discovery kept (analysis/discovered.json) as a check of the gate.

A slice is checked on its confirmation half only, the examples that took no
part in finding it. A regressed slice is a warning naming it; with
`[discovery] fail = true` in gate.toml it fails the gate.
"""

from __future__ import annotations

from evalsuite.rules.evidence import Check
from evalsuite.rules.settings import GateRules
from evalsuite.run.contract import BOTH_RIGHT, NEWLY_RIGHT, NEWLY_WRONG

RULE = "discovered drop"


def discovered_checks(rules: GateRules, discovered: dict) -> list[Check]:
    tolerance = discovered.get("tolerance", 0.0)
    alpha = discovered.get("alpha", rules.alpha)
    checks = []
    for found in discovered.get("slices", []):
        counts = found["confirmation"]
        n = counts["examples"]
        both = counts.get(BOTH_RIGHT, 0)
        regressed = found["status"] == "regressed"
        check = Check(
            rule=RULE,
            metric="accuracy",
            slice=found["id"],
            baseline=(both + counts[NEWLY_WRONG]) / n if n else None,
            candidate=(both + counts[NEWLY_RIGHT]) / n if n else None,
            delta=counts.get("delta"),
            threshold=f"drop <= {tolerance:g} on the confirmation half, or not confirmed (Holm, alpha {alpha:g})",
            status=("fail" if rules.discovery_fail else "warn") if regressed else "pass",
            interval=counts.get("interval"),
            p_value=counts.get("p_value"),
            counts={k: counts[k] for k in ("examples", NEWLY_RIGHT, NEWLY_WRONG)},
            conclusive=True,
            title=found["description"],
        )
        check.passed = not (regressed and rules.discovery_fail)
        if regressed:
            check.message = (
                f"{found['description']}: {counts[NEWLY_WRONG]} newly wrong against {counts[NEWLY_RIGHT]} newly right "
                f"of {n} examples it was not found on (delta {check.delta:+.4f}, 95% CI "
                f"{check.interval[0]:+.4f}..{check.interval[1]:+.4f}, p {check.p_value:.2g})"
            )
        checks.append(check)
    return checks


def discovered_warnings(rules: GateRules, checks: list[Check], discovered: dict) -> list[str]:
    warnings = []
    if discovered.get("skipped"):
        warnings.append(discovered["skipped"])
    note = discovered.get("representation", "")
    if note.startswith("image properties only"):
        warnings.append(f"discovery used {note}")
    if not rules.discovery_fail:
        for check in checks:
            if check.status == "warn":
                warnings.append(
                    f"{RULE}: {check.message}; [discovery] fail = true in gate.toml makes this fail the gate"
                )
    return warnings
