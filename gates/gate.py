"""The gate stage: decide, write what CI reads, record it in the manifest."""

from __future__ import annotations

import time

from evalsuite import progress
from evalsuite.rundir import RunDir, relative
from gates.outputs import write_outputs
from gates.rules import GateRules
from gates.verdict import Verdict, decide


def gate(run: RunDir, rules: GateRules, log=progress.log) -> Verdict:
    """Judge the run's analysis, write verdict.json, junit.xml and summary.md, print one line per check."""
    started = time.perf_counter()
    run.forget_stage("gate")
    verdict = decide(run, rules)
    paths = write_outputs(run, verdict)
    seconds = time.perf_counter() - started
    run.record_stage(
        "gate",
        {
            "passed": verdict.passed,
            "seconds": round(seconds, 3),
            "rules_source": rules.source,
            "outputs": {name: relative(run, path) for name, path in paths.items()},
        },
    )
    for check in verdict.checks:
        status = "PASS" if check.passed else "FAIL"
        detail = check.message or (
            f"baseline {check.baseline:.4f}, candidate {check.candidate:.4f}, delta {check.delta:+.4f}; {check.threshold}"
        )
        print(f"gate: {status} {check.rule} [{check.slice}] {detail}", flush=True)
    for note in verdict.notes:
        log(f"gate: note: {note}")
    log(f"gate: verdict written to {paths['verdict']} in {seconds:.1f}s")
    return verdict
