"""Package namespaces that import a submodule only when one of its names is first used.

A stage package's `__init__` lists its public API in `__all__` and maps each name to the module
that defines it; `import pipeline.fit` then costs nothing, and `sgmft fit` of a head never loads
what only the probe or the report needs.
"""
from __future__ import annotations

import importlib
from typing import Callable, Mapping


def exports(package: str, names: Mapping[str, str]) -> Callable[[str], object]:
    """A module-level `__getattr__` for `package`: name -> getattr(import_module(names[name]), name)."""

    def __getattr__(name: str) -> object:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(names[name]), name)

    return __getattr__
