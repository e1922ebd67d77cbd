"""Config fields that carry their help text: one source for each setting's default and its words.

Every stage's frozen config dataclass declares its fields with `setting(default, help)`; the
typer options of cli.py read both from the dataclass (`help_of`, and the class attribute that
holds the default), so `--help`, the default and the library can never drift apart.
"""
from __future__ import annotations

import dataclasses
from typing import Any


def setting(default: Any, help: str, *, measured: bool = True) -> Any:
    """A config field with its default and help; `measured=False` marks settings that do not change what a
    run measures (paths, device, verbosity), so the report does not tell runs apart by them."""
    return dataclasses.field(default=default, metadata={"help": help, "measured": measured})


def required(help: str) -> Any:
    """A config field the caller must give, with its help."""
    return dataclasses.field(metadata={"help": help, "measured": True})


def help_of(cls: type, name: str) -> str:
    return _field(cls, name).metadata.get("help", "")


def unmeasured(cls: type) -> frozenset[str]:
    """Names of the fields of `cls` declared `measured=False`."""
    return frozenset(f.name for f in dataclasses.fields(cls) if not f.metadata.get("measured", True))


def _field(cls: type, name: str) -> dataclasses.Field:
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f
    raise KeyError(f"{cls.__name__} has no setting {name!r}")
