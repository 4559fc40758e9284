"""What every ``scaleladder`` command shares: help that names each value's type, and one way to fail.

Typed help. Typer 0.2x's rich help prints a parameter's Python annotation as its type (``<str>``,
``<int>``) and prints ``<bool>`` for every flag, though a flag takes no value; it has no hook per
parameter. :class:`App` builds every command and group with :class:`TypedCommand` / :class:`TypedGroup`,
which give each parameter that declared no ``metavar`` the conventional one (``INTEGER``, ``FLOAT``,
``TEXT``, ``FILE``, ``[a|b]``, nothing for a flag), so help looks the same on every typer version.

Errors. :func:`fail` prints an SDK error as ``field: message``, the form the service's own 422s use
(:meth:`api.errors.ScaleLadderError.__str__` is the one formatter), and exits 1.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, NoReturn, get_args, get_origin

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

console = Console(soft_wrap=True)  # a line with a long database URL stays one line (scripts grep it)

_SCALARS = {bool: "BOOLEAN", int: "INTEGER", float: "FLOAT", str: "TEXT", Path: "PATH"}


def _choices_label(choices: Any) -> str:
    return "[" + "|".join(str(c.value if isinstance(c, Enum) else c) for c in choices) + "]"


def _annotation_label(annotation: Any) -> str:
    if get_origin(annotation) in (list, tuple):        # a repeatable option: the type of one value
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        return _annotation_label(args[0]) if args else "TEXT"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return _choices_label(annotation)
    return _SCALARS.get(annotation) or getattr(annotation, "__name__", str(annotation)).upper()


def type_label(param: Any) -> str:
    """The metavar help shows for ``param``: empty for a flag, else the type of the value it takes."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    desc = getattr(param, "type_descriptor", None)
    if desc is not None:                               # typer >= 0.2x: no click ParamType on the param
        if desc.is_choice and desc.choices is not None:
            return _choices_label(desc.choices)
        if desc.is_path:
            return str(desc.path_type).upper()
        return _annotation_label(desc.annotation)
    kind = getattr(param, "type", None)                # older typer: a click ParamType
    if getattr(kind, "choices", None):
        return _choices_label(kind.choices)
    return str(getattr(kind, "name", "TEXT")).upper()


def _type_params(params: list[Any]) -> list[Any]:
    for param in params:
        if getattr(param, "_scaleladder_typed", False) or param.metavar is not None:
            continue
        label = type_label(param)
        if param.param_type_name == "argument":
            # an argument's metavar is its name on the usage line (STUDY_ID, as click writes it); typer
            # 0.2x prints its type from display_type_rich, which ignores the metavar
            param.metavar = (param.name or "").upper()
            param.display_type_rich = lambda ctx, label=label: label
        else:
            param.metavar = label
        param._scaleladder_typed = True
    return params


class TypedCommand(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _type_params(super().get_params(ctx))   # includes --help, built per context


class TypedGroup(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _type_params(super().get_params(ctx))


class App(typer.Typer):
    """``typer.Typer`` whose commands and groups show typed help (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", TypedGroup)
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", TypedCommand)
        return super().command(*args, **kwargs)


def fail(message: object) -> NoReturn:
    """Print ``error: message`` (an SDK error in its ``field: message`` form) and exit 1."""
    console.print(f"[red]error:[/] {escape(str(message))}")  # "[a|b]" in a message is text, not markup
    raise typer.Exit(1)
