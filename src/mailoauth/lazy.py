"""Package names that load on first use (PEP 562), so importing one submodule — say
``mailoauth.mail.connect`` for ``mailoauth token`` — does not load its siblings.

A package lists each public name and the submodule defining it, imports them under
``TYPE_CHECKING`` for the type checker, and sets
``__getattr__, __dir__ = lazy_exports(__name__, {...})``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` for ``package``. Loading a submodule binds
    every name it exports at once: a submodule may share its name with a function it
    defines (``mailoauth.queue.drain``), and importing it rebinds the package attribute to
    the module, so the function must be bound after the import, whichever name came first."""
    namespace = sys.modules[package].__dict__

    def get(name: str) -> Any:
        try:
            submodule = exports[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        module = importlib.import_module(f"{package}.{submodule}")
        for export, where in exports.items():
            if where == submodule:
                namespace[export] = getattr(module, export)
        return namespace[name]

    def names() -> list[str]:
        return sorted({*namespace, *exports})

    return get, names
