"""Paradigms by name: the built-in ones and those other packages register as plugins.

A package adds a paradigm by naming its `mindshift.harness.paradigm.Paradigm` subclass under the
entry-point group `mindshift.paradigms`, the entry point's name being the paradigm's `name`
(the `paradigm` key of an experiment config), e.g. in its pyproject.toml:

    [project.entry-points."mindshift.paradigms"]
    pushback = "my_protocols.pushback:Pushback"

mindshift registers its own paradigms the same way (its pyproject.toml), and also knows them
without any installed metadata (`paradigms.PARADIGMS`), so a source checkout on PYTHONPATH
runs them too; a test keeps the two lists equal.

A plugin's module is imported only when its name is looked up: a broken plugin (an import
error, an object that is not a paradigm class, a name that differs from the entry point's)
fails the run that asks for it, in one line naming the plugin, and no other run.
Both the CLI and the analysis look paradigms up here (the analysis may import `paradigms`).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Final

from mindshift.harness.errors import ConfigError, UserError
from mindshift.harness.paradigm import Paradigm
from mindshift.paradigms import PARADIGMS

ENTRY_POINT_GROUP: Final = "mindshift.paradigms"
"""The entry-point group other packages register their `Paradigm` subclasses under."""


class ParadigmPluginError(UserError):
    """An installed package registered a paradigm that cannot be used (its message is one
    line naming the entry point and the package that declares it)."""


class ParadigmRegistry(Mapping[str, type[Paradigm]]):
    """Paradigm classes by name: the built-ins, then the plugins' entry points.

    Iterating, `len` and `in` read names only; `registry[name]` imports a plugin's module
    (once) and checks what it finds. It is the mapping `harness.experiment.prepare` takes.
    """

    def __init__(
        self, builtins: Mapping[str, type[Paradigm]], plugins: Iterable[EntryPoint]
    ) -> None:
        self._builtins = dict(builtins)
        self._plugins: dict[str, list[EntryPoint]] = {}
        for entry_point in plugins:
            self._plugins.setdefault(entry_point.name, []).append(entry_point)
        self._loaded: dict[str, type[Paradigm]] = {}

    def __contains__(self, name: object) -> bool:
        # Mapping's default would load the plugin (a broken one would then look unknown).
        return name in self._builtins or name in self._plugins

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._builtins.keys() | self._plugins.keys()))

    def __len__(self) -> int:
        return len(self._builtins.keys() | self._plugins.keys())

    def __getitem__(self, name: str) -> type[Paradigm]:
        if name not in self._loaded:
            self._loaded[name] = self._resolve(name)
        return self._loaded[name]

    def _resolve(self, name: str) -> type[Paradigm]:
        builtin = self._builtins.get(name)
        entries = self._plugins.get(name, [])
        if builtin is None and not entries:
            raise KeyError(name)
        found = [_load(entry) for entry in entries]
        # mindshift's own entry points name the built-ins: the same class, no conflict.
        others = [entry for entry, cls in zip(entries, found, strict=True) if cls is not builtin]
        if builtin is not None and others:
            raise ParadigmPluginError(
                f"paradigm plugin {_describe(others[0])} takes the name of the built-in "
                f"paradigm '{name}'; rename it (its entry point name and its class's name)"
            )
        if builtin is not None:
            return builtin
        if len({id(cls) for cls in found}) > 1:
            described = " and ".join(_describe(entry) for entry in entries)
            raise ParadigmPluginError(
                f"paradigm '{name}' is registered by two plugins, {described}; uninstall one"
            )
        return found[0]


def installed_paradigms() -> ParadigmRegistry:
    """Every paradigm this installation offers (the entry points are read now, so a plugin
    installed after this process started is seen by the next call)."""
    return ParadigmRegistry(PARADIGMS, entry_points(group=ENTRY_POINT_GROUP))


def paradigm_class(name: str) -> type[Paradigm]:
    """The paradigm called `name`, or ConfigError naming the known ones."""
    registry = installed_paradigms()
    if name not in registry:
        raise ConfigError(f"unknown paradigm {name!r} (known: {', '.join(registry)})")
    return registry[name]


def _load(entry: EntryPoint) -> type[Paradigm]:
    """The class an entry point names, checked to be a usable paradigm under that name."""
    try:
        loaded = entry.load()
    except Exception as error:  # noqa: BLE001 - a plugin's module may raise anything on import
        reason = " ".join(f"{type(error).__name__}: {error}".split())
        raise ParadigmPluginError(
            f"paradigm plugin {_describe(entry)} cannot be loaded: {reason}"
        ) from None
    if not (isinstance(loaded, type) and issubclass(loaded, Paradigm)):
        raise ParadigmPluginError(
            f"paradigm plugin {_describe(entry)} is not a "
            f"mindshift.harness.paradigm.Paradigm subclass (it is {_kind(loaded)})"
        )
    if inspect.isabstract(loaded):
        missing = ", ".join(sorted(getattr(loaded, "__abstractmethods__", ())))
        raise ParadigmPluginError(
            f"paradigm plugin {_describe(entry)} is abstract (it does not implement {missing})"
        )
    declared = getattr(loaded, "name", None)
    if declared != entry.name:
        raise ParadigmPluginError(
            f"paradigm plugin {_describe(entry)} names itself {declared!r}: the entry point's "
            "name must be the paradigm's name"
        )
    return loaded


def _describe(entry: EntryPoint) -> str:
    package = f" from package '{entry.dist.name}'" if entry.dist is not None else ""
    return f"'{entry.name}' ({entry.value}{package})"


def _kind(value: object) -> str:
    if isinstance(value, type):
        return f"the class {value.__module__}.{value.__qualname__}"
    return f"a {type(value).__name__}"
