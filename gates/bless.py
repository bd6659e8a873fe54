"""Blessing: a candidate that passed goes into the team's registry, with what it passed on."""

from __future__ import annotations

import subprocess
from pathlib import Path

from evalsuite import blessing, progress, registry
from evalsuite.data.class_names import title
from evalsuite.errors import InputError
from evalsuite.run.contract import CANDIDATE, load_summary
from evalsuite.run.folder import RunDir
from gates.verdict import Verdict


def stage_candidate(run: RunDir, verdict: Verdict, folder: Path) -> blessing.Staged | None:
    """Copy the judged candidate into `folder` under a hidden name; only ever called for a passing verdict.

    Nothing is visible until the caller publishes the result, which it does
    last, once the verdict is written and recorded (gates/gate.py). Returns
    None when the candidate already is the newest blessed model (blessing it
    again would add nothing but a duplicate).
    """
    if not verdict.passed:
        raise InputError("a failed gate blesses nothing")
    judged_fingerprint = verdict.judged["candidate"]["fingerprint"]
    analysis = run.require_stage("analysis", "analysis")
    weights = (analysis.get("candidate") or {}).get("weights_fingerprint")
    newest = registry.newest(folder, warn=progress.warn) if folder.exists() or folder.is_symlink() else None
    if newest is not None and weights is not None and newest.record.get("weights_fingerprint") == weights:
        progress.log(
            f"gate: {verdict.candidate['label']} is already the newest blessed model ({newest.path}); nothing added"
        )
        return None
    summary = load_summary(run.analysis_dir)
    model = run.resolve(analysis["candidate"]["path"])
    label = verdict.candidate["label"]
    # The Keras file goes along only for a model of this run, where it is the same export's twin,
    # and only as training recorded it: a file swapped in since is refused, not blessed.
    own = "/" not in label and not label.startswith(".") and run.model_dir(label).resolve() == model.resolve()
    keras_file, keras_fingerprint = None, None
    if own:
        keras_file = run.keras_model_path(label)
        info = ((run.stage("training") or {}).get("runs") or {}).get(label) or {}
        keras_fingerprint = info.get("keras_fingerprint")
        if keras_fingerprint is None or keras_file.is_symlink() or not keras_file.is_file():
            raise InputError(f"{keras_file}: no Keras file as training recorded it; rerun training; nothing blessed")
    names = summary["eval_data"].get("class_names")
    per_class = {title(sid, names): metrics["accuracy"] for sid, metrics in summary["models"][CANDIDATE].items()}
    record = {
        "candidate": label,
        "baseline": verdict.baseline["label"],
        "verdict": {
            "state": verdict.state,
            "checks": len(verdict.deciding_checks),
            "inconclusive": len(verdict.inconclusive),
            "warnings": verdict.warnings,
        },
        "judged": verdict.judged,
        "weights_fingerprint": weights,
        "eval_data": {
            "source": summary["eval_data"]["source"],
            "fingerprint": summary["eval_data"]["fingerprint"],
            "examples": summary["eval_data"]["examples"],
            # What one image and one label are for this model (evalsuite/data/spec.py).
            "data_spec": summary["eval_data"].get("data_spec"),
        },
        "rules": verdict.rules,
        # The split the candidate was trained on, known for a model of this run (evalsuite/data/split_identity.py).
        "training_split": (run.stage("data") or {}).get("split") if own else None,
        "accuracy": per_class,
        "run_folder": str(run.path.resolve()),
        "git_commit": _git_commit(),
    }
    seed_models = {}
    if verdict.recipe is not None:
        further = (analysis.get("recipe") or [])[1:]
        seed_models = {
            seed["candidate"]["label"]: (run.resolve(seed["candidate"]["path"]), seed["candidate"]["fingerprint"])
            for seed in further
        }
        record["recipe"] = {
            "seeds": verdict.recipe["seeds"],
            "candidates": verdict.recipe["candidates"],
            "models": {label: f"{registry.SEEDS_DIR}/{label}" for label in seed_models},
            "fingerprints": {label: judged for label, (_, judged) in seed_models.items()},
            "churn_floor": verdict.recipe["churn_floor"]["overall"],
        }
    return blessing.stage(folder, model, keras_file, record, judged_fingerprint, keras_fingerprint, seed_models)


def _git_commit() -> str | None:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def history_lines(folder: Path) -> list[str]:
    """The blessed models, newest first, with overall and worst-class accuracy."""
    found = registry.entries(folder, warn=progress.warn)
    if not found:
        return [f"{folder}: no blessed models yet"]
    lines = [f"{'blessed (UTC)':<24} {'overall':>8}  {'worst class':<22} {'commit':<10} entry"]
    for entry in found:
        accuracy = dict(entry.record.get("accuracy", {}))
        overall = accuracy.pop("overall", None)
        worst = min(accuracy.items(), key=lambda item: item[1]) if accuracy else ("-", None)
        commit = (entry.record.get("git_commit") or "-")[:10]
        overall_text = f"{overall:.4f}" if isinstance(overall, (int, float)) else "-"
        worst_text = f"{worst[0]} {worst[1]:.4f}" if worst[1] is not None else "-"
        lines.append(
            f"{entry.record.get('blessed_at', '?'):<24} {overall_text:>8}  {worst_text:<22} {commit:<10} {entry.name}"
        )
    return lines
