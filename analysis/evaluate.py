"""The analysis stage: both models through one TFMA pipeline, read once.

TFMA computes per-slice metrics (overall and per true class), the
candidate-minus-baseline diffs, the paired counts (`analysis/paired.py`), the
confusion matrices and the gate's validation in the same Beam pipeline. The
results stay in TFMA's own format (`tfma.load_eval_result`) and are also
flattened into `summary.json`; the examples whose outcome changed go to
`changed.json`, listed from the predictions of that same pass
(`analysis/outcome_tap.py`), and their counts must equal TFMA's.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from analysis.changed import changed_examples, check_changed_against_tfma
from analysis.config import AnalysisConfig
from analysis.discovery_pass import DiscoveryInputs, discovery_enabled, find_regressed_slices
from analysis.eval_data import resolve_eval_data
from analysis.models import check_saved_model, recipe_seeds, resolve_model
from analysis.outcome_table import read_outcomes
from analysis.summary import summarize, validation_as_json
from analysis.tfma_run import (
    build_eval_config,
    check_runner,
    run_tfma,
    runner_of,
    with_default_workers,
    with_explicit_runner,
)
from evalsuite import progress
from evalsuite.data.spec import DataSpec
from evalsuite.errors import InputError
from evalsuite.rules.definitions import tfma_thresholds
from evalsuite.rules.settings import GateRules
from evalsuite.run.atomic import atomic_dir, write_json_atomic
from evalsuite.run.contract import (
    BASELINE,
    CANDIDATE,
    CHANGED_NAME,
    DISCOVERED_NAME,
    NEWLY_RIGHT,
    NEWLY_WRONG,
    SUMMARY_NAME,
    TFMA_DIR,
    VALIDATION_NAME,
    load_summary,
)
from evalsuite.run.fingerprints import fingerprint, fingerprint_shards
from evalsuite.run.folder import RunDir, relative
from evalsuite.run.model_identity import weights_fingerprint
from evalsuite.run.stage_code import stage_code_fingerprint

OUTCOMES_DIR = "outcomes"  # inside the staging folder while the analysis runs; never among its outputs


@dataclass
class AnalysisResult:
    summary: dict
    tfma_path: Path
    reused: bool = False
    seconds: float = 0.0


def analyze(
    run: RunDir, config: AnalysisConfig, rules: GateRules, log=progress.log, force: bool = False
) -> AnalysisResult:
    """Evaluate baseline and candidate with TFMA, or reuse the results if nothing changed.

    Every input is checked before the folder is touched: bad input (a missing
    model, data without some class, an unknown Beam runner) leaves it as it
    was. `force` recomputes even when nothing changed.
    """
    started = time.perf_counter()
    baseline = resolve_model(run, config.baseline, "baseline")
    candidate = resolve_model(run, config.candidate, "candidate")
    if baseline.path == candidate.path:
        raise InputError(
            f"--baseline and --candidate are the same model ({candidate.path}): a model judged against itself "
            "says nothing; name two different models"
        )
    recipe = recipe_seeds(run, baseline, candidate)  # empty unless the run trained several seeds
    beam_args = with_explicit_runner(config.beam_args)
    check_runner(runner_of(beam_args))
    eval_data = resolve_eval_data(run, config.eval_data, log)
    beam_args = with_default_workers(beam_args, eval_data["examples"])
    thresholds = tfma_thresholds(
        rules, eval_data["examples"], eval_data["examples_per_class"], eval_data["slice_features"]
    )
    # Everything the EvalConfig is built from, so an unchanged analysis is recognised without TFMA.
    stage_fingerprint = fingerprint(
        baseline.fingerprint,
        candidate.fingerprint,
        {k: eval_data[k] for k in ("fingerprint", "files_fingerprint", "examples", "examples_per_class")},
        eval_data["slice_features"],
        [vars(t) for t in thresholds],
        rules.key(),
        config.jackknife,
        config.seed,
        config.baseline_note,
        config.baseline_info,
        beam_args,
        stage_code_fingerprint("analysis"),
        discovery_enabled(),
        *([[s.seed, s.baseline.fingerprint, s.candidate.fingerprint] for s in recipe] if recipe else []),
    )
    record = None if force else run.reusable("analysis", stage_fingerprint)
    if record is not None:
        summary = load_summary(run.analysis_dir)
        log(f"analysis: reused TFMA results in {run.analysis_dir} (models, data and rules unchanged)")
        return AnalysisResult(summary, run.tfma_dir, reused=True, seconds=time.perf_counter() - started)

    spec = DataSpec.from_dict(eval_data["data_spec"], str(run.manifest_path))
    slice_count = 1 + spec.num_classes + sum(len(values) for values in eval_data["slice_features"].values())
    check_saved_model(baseline.path, "baseline", spec)
    check_saved_model(candidate.path, "candidate", spec)
    # Every further seed's models, each once (a baseline from the registry is every seed's, checked above).
    further = {m.path: (m, s.seed) for s in recipe[1:] for m in (s.baseline, s.candidate)}
    for model, seed in further.values():
        if model.path not in (baseline.path, candidate.path):
            check_saved_model(model.path, f"{model.role} of seed {seed}", spec)
    # Nothing downstream may look done while the analysis changes under it.
    run.invalidate_from("analysis")
    eval_config = build_eval_config(rules, eval_data, config.jackknife, recipe=recipe)
    runner = runner_of(beam_args)
    workers = next((arg.split("=", 1)[1] for arg in beam_args if arg.startswith("--direct_num_workers=")), None)
    log(
        f"analysis: TFMA on {eval_data['examples']} examples, {len(eval_config.model_specs)} models, {slice_count} slices, runner {runner}"
        + (f" on {workers} worker processes (-- --direct_num_workers=1 for one)" if workers else "")
        + f" (paired counts{', jackknife' if config.jackknife else ''}) ..."
    )
    with atomic_dir(run.analysis_dir) as staging:
        tfma_started = time.perf_counter()
        with progress.heartbeat("analysis: TFMA still running"):
            run_tfma(
                baseline,
                candidate,
                eval_config,
                eval_data["pattern"],
                staging / TFMA_DIR,
                beam_args,
                config.seed,
                recipe,
                outcomes=staging / OUTCOMES_DIR,
            )
        tfma_seconds = time.perf_counter() - tfma_started
        summary = summarize(staging / TFMA_DIR, baseline, candidate, eval_data, config, runner, recipe)
        log(f"analysis: TFMA done in {tfma_seconds:.1f}s; listing the examples whose outcome changed ...")
        columns = read_outcomes(staging / OUTCOMES_DIR, eval_data["examples"], eval_data["pattern"])
        shutil.rmtree(staging / OUTCOMES_DIR)  # each example's row: read, not kept
        changed, outcomes = changed_examples(columns, eval_data["pattern"])
        inputs = DiscoveryInputs(baseline.path, spec, config.seed, eval_data["examples"]) if discovery_enabled() else None
        if inputs is not None:
            try:
                inputs.read(eval_data["pattern"], columns["base_class"], columns["base_confidence"])
            except Exception:
                _require_unchanged(eval_data)  # a file cut short under the read says so, not how the reader failed
                raise
        del columns
        _require_unchanged(eval_data)
        changed["pattern"] = run.portable(eval_data["pattern"])
        check_changed_against_tfma(changed, summary)
        discovered = find_regressed_slices(inputs, outcomes, rules, summary, log)
        write_json_atomic(staging / DISCOVERED_NAME, discovered)
        write_json_atomic(staging / SUMMARY_NAME, summary)
        write_json_atomic(staging / VALIDATION_NAME, validation_as_json(staging / TFMA_DIR))
        write_json_atomic(staging / CHANGED_NAME, changed)
    seconds = time.perf_counter() - started
    run.record_stage(
        "analysis",
        {
            "fingerprint": stage_fingerprint,
            # What the gate re-checks before it trusts these results (chain of custody).
            "output_fingerprints": run.analysis_output_fingerprints(),
            "seconds": round(seconds, 3),
            "tfma_seconds": round(tfma_seconds, 3),
            "baseline": {
                "label": baseline.label,
                "path": run.portable(baseline.path),
                "fingerprint": baseline.fingerprint,
                "weights_fingerprint": weights_fingerprint(baseline.path),
            },
            "candidate": {
                "label": candidate.label,
                "path": run.portable(candidate.path),
                "fingerprint": candidate.fingerprint,
                "weights_fingerprint": weights_fingerprint(candidate.path),
            },
            "eval_data": {k: v for k, v in eval_data.items() if k != "pattern"},
            "pattern": run.portable(eval_data["pattern"]),
            "intervals": summary["confidence_intervals"],
            "rules": rules.key(),
            "runner": runner,
            "beam_args": list(beam_args),
            "seed": config.seed,
            **({"recipe": recipe_record(run, recipe)} if recipe else {}),
            "outputs": {
                "tfma": relative(run, run.tfma_dir),
                "summary": relative(run, run.analysis_dir / SUMMARY_NAME),
                "validation": relative(run, run.analysis_dir / VALIDATION_NAME),
                "changed": relative(run, run.analysis_dir / CHANGED_NAME),
                "discovered": relative(run, run.analysis_dir / DISCOVERED_NAME),
            },
        },
    )
    overall_b = summary["models"][BASELINE]["overall"]["accuracy"]
    overall_c = summary["models"][CANDIDATE]["overall"]["accuracy"]
    paired = summary["paired"]["overall"]
    log(
        f"analysis: accuracy {baseline.label} {overall_b:.4f}, {candidate.label} {overall_c:.4f}; "
        f"{paired[NEWLY_RIGHT]} newly right, {paired[NEWLY_WRONG]} newly wrong ({seconds:.1f}s in all)"
    )
    if recipe:
        recipe_overall = summary["recipe"]["slices"]["overall"]
        deltas = [(c[NEWLY_RIGHT] - c[NEWLY_WRONG]) / sum(c.values()) for c in recipe_overall["per_seed"]]
        log(f"analysis: the recipe over {len(recipe)} seeds, overall deltas " + ", ".join(f"{d:+.4f}" for d in deltas))
    return AnalysisResult(summary, run.tfma_dir, reused=False, seconds=seconds)


def recipe_record(run: RunDir, recipe) -> list[dict]:
    """Each seed's models as the analysis judged them (the gate re-checks them before it trusts the results)."""
    return [
        {
            "seed": s.seed,
            **{
                role: {"label": model.label, "path": run.portable(model.path), "fingerprint": model.fingerprint}
                for role, model in ((BASELINE, s.baseline), (CANDIDATE, s.candidate))
            },
        }
        for s in recipe
    ]


def _require_unchanged(eval_data: dict) -> None:
    """The evaluation files are the ones hashed before TFMA's pass: its rows are put in order by position alone."""
    if fingerprint_shards(eval_data["pattern"]) != eval_data["files_fingerprint"]:
        raise InputError(f"{eval_data['pattern']}: the evaluation files changed while the analysis ran; run it again")
