"""Chain of custody: what the analysis judged must be what is on disk now.

The analysis records the fingerprints of exactly what it consumed (both
models, the evaluation shards' bytes, the rules) and of what it wrote. The
gate re-hashes each before it trusts a number, without importing TensorFlow
or TFMA: a model swapped after the analysis, a replaced or truncated shard, or
an edited summary is exit 2, never a verdict.
"""

from __future__ import annotations

from evalsuite.errors import InputError
from evalsuite.rules.settings import GateRules
from evalsuite.run.contract import ROLES
from evalsuite.run.fingerprints import fingerprint_shards, fingerprint_tree
from evalsuite.run.folder import RunDir


def judged_state(run: RunDir, rules: GateRules) -> dict:
    """Re-check the analysis' inputs and outputs; return what a verdict on them judges."""
    # The manifest's reader has checked the record against the analysis stage's schema.
    record = run.require_stage("analysis", "analysis")
    models = {role: (run.resolve(record[role]["path"]), record[role]["fingerprint"]) for role in ROLES}
    # A recipe's further seeds: every model the recipe's verdict rests on is under custody too.
    further = {
        f"{role} of seed {seed['seed']}": (run.resolve(seed[role]["path"]), seed[role]["fingerprint"])
        for seed in (record.get("recipe") or [])[1:]
        for role in ROLES
    }
    eval_data = record["eval_data"]
    pattern = str(run.resolve(record["pattern"]))
    files_fingerprint = eval_data["files_fingerprint"]
    output_fingerprints = record["output_fingerprints"]
    analysis_fingerprint = record["fingerprint"]
    if record.get("rules") != rules.key():
        raise InputError(
            f"{run.analysis_dir}: analysis was run with other gate rules than {rules.source}; "
            "rerun the analysis (python -m analysis) or the whole pipeline"
        )
    for role, (path, recorded) in {**models, **further}.items():
        if not (path / "saved_model.pb").is_file():
            raise InputError(f"{path}: the {role} model the analysis judged is gone")
        if fingerprint_tree(path) != recorded:
            raise InputError(f"{path}: the {role} model changed since the analysis; rerun the analysis")
    on_disk = fingerprint_shards(pattern)
    if on_disk is None or on_disk != files_fingerprint:
        raise InputError(f"{pattern}: the evaluation examples changed since the analysis; rerun the analysis")
    on_disk = run.analysis_output_fingerprints()
    for name in sorted(set(output_fingerprints) | set(on_disk)):
        if output_fingerprints.get(name) != on_disk.get(name):
            what = (
                "is gone"
                if name not in on_disk
                else "was not written by it"
                if name not in output_fingerprints
                else "was changed"
            )
            raise InputError(f"{run.path / name}: {what} since the analysis wrote its results; rerun the analysis")
    return {
        "analysis": analysis_fingerprint,
        "baseline": {"label": record["baseline"].get("label"), "fingerprint": models["baseline"][1]},
        "candidate": {"label": record["candidate"].get("label"), "fingerprint": models["candidate"][1]},
        "eval_data": {
            "source": eval_data.get("source"),
            "fingerprint": eval_data.get("fingerprint"),
            "files_fingerprint": files_fingerprint,
            "examples": eval_data.get("examples"),
        },
        "rules": rules.key(),
        **({"recipe_models": {name: recorded for name, (_, recorded) in further.items()}} if further else {}),
    }
