"""docs/configs.md, generated from the config dataclasses themselves: every key, its type, its default and the
comment beside it in the code. Regenerate with ``python -m daigt.config_reference > docs/configs.md`` (or
``make docs``); a test fails when the page is stale, so it never drifts from what ``schema.parse`` accepts."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import typing
from typing import Any

from daigt.blending import BlendConfig
from daigt.config import ModelConfig
from daigt.families import FAMILIES, get_family
from daigt.generalization import EvaluateConfig
from daigt.project import ProjectConfig
from daigt.schema import to_dict
from daigt.service import ServeConfig
from essayio import console

FILES = (
    ("configs/project.yaml", ProjectConfig),
    ("configs/blend.yaml", BlendConfig),
    ("configs/evaluate.yaml", EvaluateConfig),
    ("configs/serve.yaml", ServeConfig),
    ("configs/models/<name>.yaml", ModelConfig),
)
HEADER = """# Config reference

Generated from the config dataclasses by `python -m daigt.config_reference > docs/configs.md` (`make docs`);
a test fails when this page is stale. Every key is checked when a config is read: an unknown key is an error
that names the closest valid one, and `--set key.path=value` overrides are checked the same way
([pipeline.md](pipeline.md)).
"""


def field_comments(cls: type) -> dict[str, str]:
    """Field name -> the comment on its line, or the comment lines just above it, in the class's source."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return {}
    comments: dict[str, str] = {}
    above: list[str] = []
    for line in lines[1:]:
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("#").strip())
            continue
        declared = re.match(r"(\w+)\s*:", stripped)
        if declared and not stripped.startswith(("def ", "@", "return")):
            trailing = stripped.split("  # ", 1)[1].strip() if "  # " in stripped else ""
            comments[declared.group(1)] = " ".join([*above, trailing]).strip()
        above = []
    return comments


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return to_dict(f.default)
    if f.default_factory is not dataclasses.MISSING:
        return to_dict(f.default_factory())
    return "(required)"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _nested(annotation: Any) -> type | None:
    """The dataclass a field holds (directly or as ``X | None``), else None."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if dataclasses.is_dataclass(candidate):
            return candidate
    return None


def table(cls: type, prefix: str = "") -> list[str]:
    """Rows for every key of ``cls`` (nested dataclasses as dotted keys, after their parent's row)."""
    hints = typing.get_type_hints(cls)
    comments: dict[str, str] = {}
    for base in reversed(cls.__mro__):  # a field declared in a base class keeps its comment
        comments |= {k: v for k, v in field_comments(base).items() if v or k not in comments}
    rows = []
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        nested = _nested(hints[f.name])
        kind = "mapping" if nested else str(f.type).replace("typing.", "")
        default = "see below" if nested else json.dumps(_default(f), default=str)
        # a section's meaning: its comment, else its dataclass's docstring (first sentence)
        meaning = comments.get(f.name) or (_summary(nested).split(". ")[0].rstrip(".") if nested else "")
        rows.append(f"| `{key}` | {_cell(kind)} | `{_cell(default)}` | {_cell(meaning)} |")
        if nested:
            rows += table(nested, f"{key}.")
    return rows


def _summary(cls: type) -> str:
    """A class docstring's first paragraph, on one line (a dataclass with none gets its generated signature)."""
    doc = cls.__doc__ or ""
    return "" if doc.startswith(f"{cls.__name__}(") else (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")


def section(title: str, cls: type, doc: str | None = None) -> list[str]:
    summary = doc or _summary(cls)
    return [f"## {title}", "", summary, "", "| key | type | default | what it is |", "|---|---|---|---|",
            *table(cls), ""]  # fmt: skip


def render() -> str:
    """The whole page."""
    lines = [HEADER]
    for path, cls in FILES:
        lines += section(f"`{path}`", cls)
    for name in sorted(FAMILIES):
        params = get_family(name).Params
        lines += section(f"`params:` of family `{name}`", params, f"Keys under `params:` in a `family: {name}` config.")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    console.say(render().rstrip("\n"))
