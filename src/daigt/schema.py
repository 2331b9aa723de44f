"""Typed configs: a YAML mapping becomes a dataclass, so a misspelled key is an error instead of a silent default.

Every config kind (project, model and each family's ``params``, blend, serve) declares its keys as a dataclass;
``parse`` checks names, types and allowed values against it and fills the defaults. A problem is one line that
names the file, the key path and the fix, e.g.
``configs/blend.yaml: stacker.n_estimator: unknown key — did you mean 'n_estimators'?``.

Open mappings handed to a library (a vectorizer's or classifier's keyword arguments) are checked against the
keys that library accepts: declare the field with ``keys_from(callable)``. A dataclass may define
``check(self)`` for rules across fields; it raises ``Invalid``.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from daigt.errors import DaigtError

T = TypeVar("T")
KEYS_FROM = "daigt.schema.keys_from"


class ConfigError(DaigtError):
    """A config file says something its schema does not allow; the message is the whole story."""


class Invalid(Exception):
    """Raised by a dataclass's ``check()``: ``key`` (relative to that dataclass) and what is wrong with it."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def keys_from(valid: Callable[[], Iterable[str]], default: Any = None) -> Any:
    """A ``dict[str, Any]`` field whose keys must be among ``valid()`` (e.g. a library's keyword arguments)."""
    factory = dict if default is None else (lambda: dict(default))
    return dataclasses.field(default_factory=factory, metadata={KEYS_FROM: valid})


def check_ngram_range(value: Any, key: str = "ngram_range") -> None:
    """An n-gram range is [low, high] with 1 <= low <= high; Invalid at ``key`` otherwise."""
    if len(value) != 2 or not 1 <= value[0] <= value[1]:
        raise Invalid(f"must be [low, high] with 1 <= low <= high, got {list(value)}", key)


def closest(word: str, valid: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(word, list(valid), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_key_message(key: str, valid: Iterable[str]) -> str:
    valid = sorted(valid)
    guess = closest(key, valid)
    if guess:
        return f"unknown key — did you mean '{guess}'?"
    return f"unknown key (valid: {', '.join(valid) or 'none'})"


def parse(cls: type[T], data: Any, source: str, path: str = "") -> T:
    """``data`` (parsed YAML) as an instance of dataclass ``cls``; ConfigError naming ``source`` and the key path."""
    return _parse_value(cls, data, source, path)


def to_dict(obj: Any) -> Any:
    """A parsed config back to plain data (JSON/YAML-safe: tuples become lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    return obj


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _fail(source: str, path: str, problem: str) -> ConfigError:
    return ConfigError(f"{source}: {path or '(top level)'}: {problem}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin in (list, tuple):
        return "a list"
    if origin is dict:
        return "a mapping"
    names = {bool: "true/false", int: "an integer", float: "a number", str: "text"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _parse_value(tp: Any, value: Any, source: str, path: str) -> Any:
    if tp is Any:
        return value
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _parse_dataclass(tp, value, source, path)
    if origin is Literal:
        options = get_args(tp)
        if any(value == o and type(value) is type(o) for o in options):
            return value
        guess = closest(str(value), [str(o) for o in options])
        hint = f" — did you mean '{guess}'?" if guess else ""
        raise _fail(source, path, f"{value!r} is not one of {', '.join(repr(o) for o in options)}{hint}")
    if origin in (Union, types.UnionType):
        arms = get_args(tp)
        if value is None and type(None) in arms:
            return None
        errors = []
        for arm in (a for a in arms if a is not type(None)):
            try:
                return _parse_value(arm, value, source, path)
            except ConfigError as err:
                errors.append(err)
        if len(errors) == 1:
            raise errors[0]
        raise _fail(source, path, f"expected {_describe(tp)}, got {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise _fail(source, path, f"expected a list, got {value!r}")
        (item,) = get_args(tp)[:1] or (Any,)
        items = [_parse_value(item, v, source, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _fail(source, path, f"expected a mapping, got {value!r}")
        _, item = get_args(tp) or (str, Any)
        return {str(k): _parse_value(item, v, source, _join(path, str(k))) for k, v in value.items()}
    return _parse_scalar(tp, value, source, path)


def _parse_scalar(tp: Any, value: Any, source: str, path: str) -> Any:
    if tp is bool and isinstance(value, bool):
        return value
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp is str and isinstance(value, str):
        return value
    if tp is type(None) and value is None:
        return None
    hint = ""
    if tp is float and isinstance(value, str):
        try:
            float(value)
            hint = " (YAML reads 1e-4 as text: write 1.0e-4)"
        except ValueError:
            pass
    raise _fail(source, path, f"expected {_describe(tp)}, got {value!r}{hint}")


def _parse_dataclass(cls: type, value: Any, source: str, path: str) -> Any:
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise _fail(source, path, f"expected a mapping of {', '.join(field_names(cls))}; got {value!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in value:
        if key not in fields:
            raise _fail(source, _join(path, str(key)), unknown_key_message(str(key), fields))
    hints = _hints(cls)
    kwargs = {}
    for name, fld in fields.items():
        if name not in value:
            if fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING:
                raise _fail(source, _join(path, name), "missing required key")
            continue
        parsed = _parse_value(hints[name], value[name], source, _join(path, name))
        valid = fld.metadata.get(KEYS_FROM)
        if valid is not None and isinstance(parsed, Mapping):
            allowed = set(valid())
            for key in parsed:
                if key not in allowed:
                    raise _fail(source, _join(_join(path, name), key), unknown_key_message(key, allowed))
        kwargs[name] = parsed
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if callable(check):
        try:
            check()
        except Invalid as err:
            raise _fail(source, _join(path, err.key) if err.key else path, str(err)) from None
    return obj


def sklearn_params_error(estimator: Any, params: Mapping[str, Any]) -> str | None:
    """sklearn's own check of keyword arguments (types and ranges), as one line; None when they are valid."""
    from sklearn.utils._param_validation import InvalidParameterError

    try:
        estimator(**params)._validate_params()
    except (InvalidParameterError, TypeError, ValueError) as err:
        return " ".join(str(err).split())
    return None
