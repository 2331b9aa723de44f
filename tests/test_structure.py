"""The architecture's rules, checked on the source (ARCHITECTURE.md): dependencies point one way, and each
on-disk format has one owner."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from daigt.config import REPO_ROOT

ENTRY_POINTS = {p.stem for p in (REPO_ROOT / "src").glob("*.py")}
FORMAT_NAMES = {"oof.csv", "test.csv", "metrics.json", "config.yaml", "ensemble.json", "oof_references.npz"}


def modules(folder: str) -> list[Path]:
    return sorted((REPO_ROOT / folder).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Top-level package names a module imports, wherever the import statement sits (inside functions too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(("folder", "forbidden"), [("augment", {"daigt"}), ("essayio", {"daigt", "augment"})])
def test_leaf_libraries_import_nothing_above_them(folder: str, forbidden: set[str]) -> None:
    offenders = {str(p.relative_to(REPO_ROOT)): imported(p) & forbidden for p in modules(folder)}
    assert not {k: v for k, v in offenders.items() if v}


def test_the_core_package_imports_no_entry_point() -> None:
    offenders = {str(p.relative_to(REPO_ROOT)): imported(p) & ENTRY_POINTS for p in modules("src/daigt")}
    assert {"train_fold", "blend", "predict", "serve"} <= ENTRY_POINTS
    assert not {k: v for k, v in offenders.items() if v}


def test_only_artifacts_py_spells_a_fold_or_ensemble_file_name() -> None:
    owner = REPO_ROOT / "src" / "daigt" / "artifacts.py"
    spelled = {}
    for path in [*modules("src"), *modules("augment"), *modules("essayio")]:
        constants = {n.value for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Constant)}
        if path != owner and constants & FORMAT_NAMES:
            spelled[str(path.relative_to(REPO_ROOT))] = constants & FORMAT_NAMES
    assert not spelled
    owner_constants = {n.value for n in ast.walk(ast.parse(owner.read_text())) if isinstance(n, ast.Constant)}
    assert owner_constants >= FORMAT_NAMES  # the rule above is not vacuous


def test_every_pointer_into_the_docs_names_a_page_that_exists() -> None:
    """Code, configs and docs point readers at docs pages and markdown links; a moved page must not strand them."""
    import re

    sources = [*modules("src"), *modules("augment"), *modules("essayio"), *(REPO_ROOT / "configs").rglob("*.yaml")]
    sources += [REPO_ROOT / "Makefile", REPO_ROOT / ".ci" / "run", *(REPO_ROOT / "docs").glob("*.md")]
    sources += [REPO_ROOT / name for name in ("README.md", "ARCHITECTURE.md")]
    broken = []
    for path in sources:
        text = path.read_text(encoding="utf-8")
        for page in re.findall(r"docs/[A-Za-z_]+\.md", text):
            if not (REPO_ROOT / page).is_file():
                broken.append(f"{path.relative_to(REPO_ROOT)}: {page}")
        if path.suffix == ".md":
            for link in re.findall(r"\]\(([^)#:]+?)(?:#[^)]*)?\)", text):
                if not (path.parent / link).exists():
                    broken.append(f"{path.relative_to(REPO_ROOT)}: ({link})")
    assert not broken, broken
