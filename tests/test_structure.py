"""The architecture's rules, checked on the source (ARCHITECTURE.md): dependencies point one way, and each
on-disk format has one owner."""

from __future__ import annotations

import ast
import re
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


def calls_named(path: Path, name: str) -> list[int]:
    """Lines where ``path`` calls a bare ``name(...)``."""
    tree = ast.parse(path.read_text())
    return [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == name]


def test_every_line_a_user_sees_goes_through_the_console() -> None:
    """One channel decides verbosity (essayio/console.py), for the core, the entry points and the leaf libraries.
    Exempt, by name: the channel itself; the Kaggle notebook's runner and src/_venv.py, which run with the
    standard library alone (on Kaggle; before the project's venv exists) and print their own lines."""
    exempt = {"essayio/console.py", "src/daigt/kaggle_notebook.py", "src/_venv.py"}
    sources = [*modules("src"), *modules("essayio"), *modules("augment")]
    printing = {str(p.relative_to(REPO_ROOT)): calls_named(p, "print") for p in sources}
    assert not {k: v for k, v in printing.items() if v and k not in exempt}
    assert all(calls_named(REPO_ROOT / name, "print") for name in exempt)  # each exemption is needed


def test_a_function_with_more_than_seven_parameters_says_why() -> None:
    """Past seven parameters a call is hard to read and easy to get wrong: group them in a named carrier, or say
    in the docstring why not ("... parameters: ...")."""
    unexplained = []
    for path in modules("src"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                a = node.args
                names = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs) if x.arg not in ("self", "cls")]
                if len(names) > 7 and "parameters:" not in (ast.get_docstring(node) or ""):
                    unexplained.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} {node.name} ({len(names)})")
    assert not unexplained, unexplained


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS - {"_venv"}))
def test_entry_points_only_parse_and_print(entry: str) -> None:
    """An entry point defines ``main`` and at most its parser (``parse_args``): what it does lives in the core,
    where the other entries, the tests and the notebook can reach it. (src/_venv.py is the bootstrap, not an entry.)"""
    tree = ast.parse((REPO_ROOT / "src" / f"{entry}.py").read_text())
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}
    assert "main" in defined and defined <= {"main", "parse_args"}, defined - {"main", "parse_args"}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS - {"_venv"}))
def test_every_entry_point_takes_quiet_and_verbose_alike(entry: str) -> None:
    """--quiet / --no-progress / --verbose come from cli_options on every entry point, set before any work."""
    source = (REPO_ROOT / "src" / f"{entry}.py").read_text()
    assert "parse_options(parser, argv)" in source  # adds --quiet/--verbose and sets the level, before any work
    assert '"--no-progress"' not in source and '"--quiet"' not in source  # declared once, in cli_options


def core_import_graph() -> dict[str, set[str]]:
    """Core module -> the core modules it imports (``families`` counted as one unit), from the source."""
    core = REPO_ROOT / "src" / "daigt"

    def unit(dotted: str) -> str:  # a package of the core counts as one unit
        package = dotted.split(".")[0]
        return package if package in {"families", "text", "hf"} else dotted

    graph: dict[str, set[str]] = {}
    for path in modules("src/daigt"):
        parts = path.relative_to(core).with_suffix("").parts
        if parts == ("__init__",):
            continue
        name = unit(".".join(p for p in parts if p != "__init__"))
        deps = graph.setdefault(name, set())
        deps |= {unit(module) for module in core_imports(path.read_text())}
        deps.discard(name)
    return graph


def core_imports(source: str) -> set[str]:
    """The core modules a source imports, dotted below ``daigt``: ``from daigt import x``, ``from daigt.x import
    y``, ``import daigt.x``, ``importlib.import_module("daigt.x")`` (an f-string counts by its fixed head) and a
    registry's ``"daigt.x:Name"`` strings (what the families' registry imports lazily)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module == "daigt":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("daigt."):
            found.add(node.module.removeprefix("daigt."))
        elif isinstance(node, ast.Import):
            found |= {a.name.removeprefix("daigt.") for a in node.names if a.name.startswith("daigt.")}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            registered = re.fullmatch(r"daigt\.([\w.]+):\w+", node.value)
            if registered:
                found.add(registered.group(1))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module":
            head = node.args[0] if node.args else None
            if isinstance(head, ast.JoinedStr) and head.values and isinstance(head.values[0], ast.Constant):
                head = head.values[0]
            text = head.value if isinstance(head, ast.Constant) and isinstance(head.value, str) else ""
            if text.startswith("daigt.") and text.removeprefix("daigt.").strip("."):
                found.add(text.removeprefix("daigt.").rstrip("."))
    return found


def test_the_import_reader_sees_every_spelling_of_an_import() -> None:
    """The layering test is only as good as its reader: a planted import in any spelling is seen."""
    planted = (
        "import daigt.blending\nfrom daigt import errors\nfrom daigt.shift import ShiftScorer\n"
        "import importlib\nimportlib.import_module('daigt.report')\nimport_module(f'daigt.families.{name}')\n"
        "import numpy\nfrom essayio import atomic\nFAMILIES = {'x': 'daigt.inference:EnsemblePredictor'}\n"
    )
    assert core_imports(planted) == {"blending", "errors", "shift", "report", "families", "inference"}


def architecture_layers() -> dict[str, int]:
    """Module -> its layer, from ARCHITECTURE.md's "Layers inside the core" list."""
    import re

    text = (REPO_ROOT / "ARCHITECTURE.md").read_text().split("## Layers inside the core", 1)[1]
    layers = {}
    for line in text.splitlines():
        numbered = re.match(r"(\d+)\. (.*)", line)
        if numbered:
            layers |= {name: int(numbered.group(1)) for name in re.findall(r"`(\w+)`", numbered.group(2))}
    return layers


def back_imports(graph: dict[str, set[str]], layers: dict[str, int]) -> list[str]:
    """Every import that does not point to a lower layer, and every module without a layer."""
    found = [f"{m}: no layer in ARCHITECTURE.md" for m in sorted(graph) if m not in layers]
    for module, deps in sorted(graph.items()):
        found += [f"{module} -> {d}" for d in sorted(deps) if d in layers and layers[d] >= layers.get(module, -1)]
    return found


def test_core_modules_import_only_from_layers_below_their_own() -> None:
    graph, layers = core_import_graph(), architecture_layers()
    assert {"config", "families", "model_configs", "fold_trainer", "blending"} <= set(graph)
    assert back_imports(graph, layers) == []
    planted = {**graph, "config": graph["config"] | {"families"}}  # what config.py once did
    assert back_imports(planted, layers) == ["config -> families"]
    sideways = {**graph, "fold_trainer": graph["fold_trainer"] | {"stacking"}}  # the same layer counts too
    assert back_imports(sideways, layers) == ["fold_trainer -> stacking"]


def test_no_function_runs_over_60_lines_unless_a_comment_says_why() -> None:
    """Long functions hide their steps; the few that stay long say why in a ``# long:`` comment at the top
    (the core, the entries and the benchmarks alike)."""
    unexplained = []
    for path in [*modules("src"), *modules("benchmarks")]:
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno >= 60:
                top = lines[node.lineno : node.body[0].end_lineno + 1]
                if not any(line.strip().startswith("# long:") for line in top):
                    unexplained.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} {node.name}")
    assert unexplained == []


def test_the_config_reference_page_is_current() -> None:
    """docs/configs.md is generated from the dataclasses schema.parse checks against; `make docs` rewrites it."""
    from daigt.config_reference import render

    page = render()
    assert "| `folds.n_folds` | int | `5` |" in page and "`params:` of family `tfidf`" in page
    assert (REPO_ROOT / "docs" / "configs.md").read_text() == page, "docs/configs.md is stale: run `make docs`"


def test_every_config_key_says_what_it_is() -> None:
    """A key's meaning comes from the comment beside its field (or its section's docstring): none may be empty."""
    from daigt.config_reference import render

    rows = [re.split(r"(?<!\\)\|", line)[1:-1] for line in render().splitlines() if line.startswith("| `")]
    assert all(len(cells) == 4 for cells in rows)  # key, type, default, meaning (a cell's own bars are escaped)
    empty = [cells[0].strip(" `") for cells in rows if not cells[3].strip()]
    assert len(rows) > 200 and not empty, f"keys without a meaning (comment the field): {empty}"
