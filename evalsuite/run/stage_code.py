"""The code a stage runs, computed from its imports rather than listed by hand.

Starting from a stage's entry module, every `import` and `from ... import`
in the project's own files is followed, wherever it stands (the code imports
lazily, inside functions, a lot), relative ones resolved. A stage's code
fingerprint covers exactly the project files found, and the versions of the
libraries they import: editing how the report formats a number never
retrains a model, and editing how the rules become TFMA thresholds reruns
the analysis.
"""

from __future__ import annotations

import ast
import functools
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from evalsuite.run.fingerprints import fingerprint_named_files
from evalsuite.run.stages import STAGES

REPO_ROOT = Path(__file__).resolve().parents[2]

# Each stage whose code decides its reuse, by the module whose function does its work.
STAGE_ENTRY = {stage.name: stage.module for stage in STAGES if stage.code_fingerprinted}


@dataclass(frozen=True)
class Imports:
    """What a module brings in: project modules (name -> file) and the outside modules they name."""

    modules: dict[str, Path]
    libraries: frozenset[str]


def stage_code_fingerprint(stage: str, root: Path = REPO_ROOT) -> str:
    """Hash the project files a stage imports (paths and bytes) and the versions of its libraries."""
    found = project_imports(STAGE_ENTRY[stage], root)
    files = sorted((path.relative_to(root).as_posix(), path) for path in found.modules.values())
    return fingerprint_named_files(files, library_versions(found.libraries))


def project_imports(entry: str, root: Path = REPO_ROOT) -> Imports:
    """Every project module `entry` imports, directly or through others, and the libraries they import."""
    if _module_file(entry, root) is None:
        raise ValueError(f"{entry}: no such module under {root}")
    modules: dict[str, Path] = {}
    libraries: set[str] = set()
    pending = [entry]
    while pending:
        name = pending.pop()
        top = name.partition(".")[0]
        if not _is_project(top, root):
            if top not in sys.stdlib_module_names:
                libraries.add(name)
            continue
        # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):
            module = ".".join(parts[:depth])
            path = _module_file(module, root)
            if path is None or module in modules:
                continue  # an attribute (`from a import name`), or already walked
            modules[module] = path
            pending.extend(imported_names(path, module))
    return Imports(modules, frozenset(libraries))


def imported_names(path: Path, module: str) -> list[str]:
    """The dotted names a module's source imports anywhere in it, relative ones made absolute.

    `from a import b` gives both `a` and `a.b`, since `b` may be a submodule.
    """
    tree = ast.parse(path.read_bytes(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                if node.level > len(parts):
                    continue  # above the top package: Python refuses it too
                base = parts[: len(parts) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target:
                continue
            names.append(target)
            names.extend(f"{target}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def library_versions(libraries: frozenset[str] | set[str]) -> dict[str, object]:
    """The installed version of each distribution that provides one of these modules."""
    versions: dict[str, str] = {}
    missing = set()
    for module in libraries:
        distributions = _distributions_of(module)
        if not distributions:
            missing.add(module.partition(".")[0])
        for name in distributions:
            versions[name] = metadata.version(name)
    return {"distributions": dict(sorted(versions.items())), "not_installed": sorted(missing)}


@functools.lru_cache(maxsize=None)
def _distributions_of(module: str) -> tuple[str, ...]:
    parts = module.split(".")
    names = sorted(set(_packages_distributions().get(parts[0], ())))
    if len(names) > 1 and len(parts) > 1:
        # A namespace shared by many distributions (google): keep those that ship the part imported.
        folder = f"{parts[0]}/{parts[1]}/"
        shipping = [name for name in names if _ships(name, folder)]
        names = shipping or names
    return tuple(names)


@functools.lru_cache(maxsize=None)
def _packages_distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def _ships(distribution: str, folder: str) -> bool:
    return any(str(file).startswith(folder) for file in metadata.distribution(distribution).files or ())


def _is_project(top: str, root: Path) -> bool:
    return bool(top) and _module_file(top, root) is not None


def _module_file(module: str, root: Path) -> Path | None:
    base = root.joinpath(*module.split("."))
    for path in (base / "__init__.py", base.parent / f"{base.name}.py"):
        if path.is_file():
            return path
    return None
