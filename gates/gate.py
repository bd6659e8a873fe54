"""The gate stage: re-check custody, decide, write what CI reads, record it in the manifest."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from evalsuite import progress
from evalsuite.data.class_names import title
from evalsuite.errors import InputError
from evalsuite.rules.settings import GateRules
from evalsuite.run.fingerprints import fingerprint_files
from evalsuite.run.folder import RunDir, relative
from evalsuite.safe_files import MAX_JSON_BYTES, read_text
from gates.custody import judged_state
from gates.outputs import append_step_summary, write_outputs, write_unjudged
from gates.verdict import Verdict, decide

STATUS_WORDS = {"pass": "PASS", "fail": "FAIL", "inconclusive": "INCONCLUSIVE", "warn": "WARN"}


def gate(run: RunDir, rules: GateRules, log=progress.log, bless: Path | None = None) -> Verdict:
    """Judge the run's analysis, write verdict.json, junit.xml and summary.md, print one line per check.

    When the gate cannot decide, its files say so ("unjudged", never passed)
    before the error reaches the caller. With `bless`, a passing candidate is
    added to that registry (and a failing one never is).
    """
    started = time.perf_counter()
    # Refusals that need no evidence come first: they leave the old verdict and report as they were.
    analysis = run.stage("analysis") or {}
    rules.check_judges(len(analysis.get("recipe") or []) or 1)
    if bless is not None:
        from evalsuite import registry
        from evalsuite.cli import check_registry_folder

        check_registry_folder(bless, "--bless")
        if bless.is_dir():
            registry.newest(bless, warn=progress.warn)
    previous = _previous_verdict(run)
    try:
        held_report = run.hold_report()
        run.invalidate_from("gate")
    except BaseException:
        # Could not even start (a full disk): the old verdict must still not stand.
        run.drop_held_report()
        with contextlib.suppress(OSError):
            run.invalidate_from("gate")
        raise
    staged = None
    try:
        judged = judged_state(run, rules)
        verdict = decide(run, rules, judged)
        # The blessing is assembled, hidden, before anything says PASSED (a blessing that fails leaves the
        # run unjudged) and published last, after the passing verdict is written and recorded: stopped at
        # any point, the registry holds either no entry or one for a run whose files say it passed.
        if bless is not None and verdict.passed:
            from gates.bless import stage_candidate

            staged = stage_candidate(run, verdict, bless)
        paths = write_outputs(run, verdict)
        seconds = time.perf_counter() - started
        run.record_stage(
            "gate",
            {
                "passed": verdict.passed,
                "state": verdict.state,
                "judged": judged,
                # What the report and the PR comment check before they believe verdict.json.
                "verdict_fingerprint": fingerprint_files([paths["verdict"]]),
                "seconds": round(seconds, 3),
                "rules_source": rules.source,
                "outputs": {name: relative(run, path) for name, path in paths.items()},
            },
        )
        if previous is not None and previous == _as_json(verdict.as_dict()):
            run.restore_report(held_report)  # the same verdict on the same evidence: the report stands
        else:
            run.drop_held_report()
        if staged is not None:
            entry = staged.publish()
            progress.log(f"gate: blessed {verdict.candidate['label']} as {entry.path}")
    except BaseException as error:
        # Whatever stopped the gate (bad input, a crash, a full disk, Ctrl-C), its files never say passed,
        # and the registry holds nothing this gate blessed (the hidden copy, or the entry just renamed in).
        if staged is not None:
            staged.discard()
        run.drop_held_report()
        reason = str(error) if isinstance(error, InputError) else f"{type(error).__name__}: {error}"
        try:
            run.forget_stage("gate")
            write_unjudged(run, reason)
        except OSError:
            run.invalidate_from("gate")
        raise
    append_step_summary(read_text(paths["summary"], MAX_JSON_BYTES, "gate summary"))
    for line in verdict.rules_in_force:
        log(f"gate: rule setting {line}")
    for warning in verdict.warnings:
        progress.warn(f"gate: {warning}")
    names = verdict.class_names
    first = f" (seed {verdict.recipe['seeds'][0]}, for the record)" if verdict.recipe is not None else ""
    for check in verdict.checks:
        status = STATUS_WORDS[check.status]
        print(f"gate: {status}{first} {check.rule} [{check.title or title(check.slice, names)}] {describe(check, names)}", flush=True)
    for check in verdict.recipe_checks:
        status = STATUS_WORDS[check.status]
        seeds = ", ".join(f"{value:{'+' if check.delta is not None else ''}.4f}" for value in check.per_seed)
        print(
            f"gate: {status} recipe {check.rule} [{title(check.slice, names)}] {describe(check, names)}; "
            f"per seed {seeds}",
            flush=True,
        )
    for note in verdict.notes:
        log(f"gate: note: {note}")
    log(f"gate: verdict written to {paths['verdict']} in {seconds:.1f}s")
    return verdict


def _previous_verdict(run: RunDir) -> dict | None:
    """The verdict a finished gate left, as JSON, or None (anything unreadable counts as none)."""
    import json

    record = run.stage("gate")
    if not record or record.get("status") != "done":
        return None
    try:
        return json.loads(read_text(run.verdict_path, MAX_JSON_BYTES, "verdict"))
    except (InputError, OSError, ValueError):
        return None


def _as_json(payload: dict) -> dict:
    import json

    return json.loads(json.dumps(payload, sort_keys=True))


def describe(check, names) -> str:
    """One line of evidence for a check, as the console shows it."""
    if check.status == "fail":
        return check.message
    parts = []
    if check.baseline is not None and check.delta is not None:
        parts.append(f"baseline {check.baseline:.4f}, candidate {check.candidate:.4f}, delta {check.delta:+.4f}")
    elif check.candidate is not None:
        parts.append(f"value {check.candidate:.4f}")
    if check.interval:
        parts.append(f"95% CI {check.interval[0]:+.4f}..{check.interval[1]:+.4f}")
    if check.p_value is not None:
        parts.append(f"p {check.p_value:.2g}")
    return ", ".join(parts) + f"; {check.threshold}"
