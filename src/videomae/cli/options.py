"""Command-line flags generated from the training options dataclasses.

Every field of `PretrainOptions` / `FinetuneOptions` / `EvalOptions` becomes a flag named
after it (`base_lr` -> `--base-lr`), with its help text and default. Only the flags a user
types are passed on, so the priority is the recipe's: defaults < `--config FILE.json` < flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from typing import Any

_NONE_WORDS = ("none", "null")


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def _scalar(kind: type, name: str) -> Any:
    """An argparse `type` that parses one value of `kind`, or 'none' where None is allowed."""

    def parse(text: str) -> Any:
        if text.lower() in _NONE_WORDS:
            return None
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__}, got {text!r}") from None

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"expected a JSON object such as '{{\"hidden_size\": 384}}' ({err})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _resume(text: str) -> bool | str:
    lowered = text.lower()
    if lowered in ("true", "yes", "1", "latest"):
        return True
    if lowered in ("false", "no", "0"):
        return False
    return text


def _describe_default(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, (tuple, list)):
        return " ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value) if value else "{}"
    return str(value)


def add_option_flags(parser: argparse.ArgumentParser, options_cls: type, skip: tuple[str, ...] = ()) -> list[str]:
    """Add one flag per dataclass field of `options_cls`; returns the field names added.

    Unset flags are left out of the parsed namespace (argparse.SUPPRESS), so `collect`
    returns exactly what was typed.
    """
    hints = typing.get_type_hints(options_cls)
    group = parser.add_argument_group(f"{options_cls.__name__} (every field can also come from --config)")
    added = []
    for f in dataclasses.fields(options_cls):
        if f.name in skip:
            continue
        kind = hints[f.name]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        help_text = f.metadata.get("help", "")
        help_text = f"{help_text} (default: {_describe_default(default)})".replace("%", "%%")
        args = dict(dest=f.name, default=argparse.SUPPRESS, help=help_text)
        origin, type_args = typing.get_origin(kind), typing.get_args(kind)
        optional = type(None) in type_args
        inner = [a for a in type_args if a is not type(None)] if type_args and origin is not tuple else [kind]
        if kind is bool:
            group.add_argument(flag_name(f.name), action=argparse.BooleanOptionalAction, **args)
        elif set(inner) == {bool, str}:  # resume: True (newest checkpoint) or a path
            group.add_argument(flag_name(f.name), nargs="?", const=True, type=_resume, metavar="CHECKPOINT", **args)
        elif origin is tuple:
            group.add_argument(flag_name(f.name), nargs=len(type_args), type=_scalar(type_args[0], f.name),
                               metavar="X" if type_args[0] is float else "N", **args)
        elif kind is dict or origin is dict:
            group.add_argument(flag_name(f.name), type=_json_object, metavar="JSON", **args)
        elif len(inner) == 1 and inner[0] in (int, float, str):
            metavar = {int: "N", float: "X", str: f.name.upper()}[inner[0]]
            parse = _scalar(inner[0], f.name) if (optional or inner[0] is not str) else str
            group.add_argument(flag_name(f.name), type=parse, metavar=metavar, **args)
        else:  # a type this generator does not know: accept JSON
            group.add_argument(flag_name(f.name), type=json.loads, metavar="JSON", **args)
        added.append(f.name)
    return added


def collect(namespace: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    """The option values the user typed, by field name."""
    values = {}
    for name in names:
        if hasattr(namespace, name):
            value = getattr(namespace, name)
            values[name] = list(value) if isinstance(value, tuple) else value
    return values


__all__ = ["add_option_flags", "collect", "flag_name"]
