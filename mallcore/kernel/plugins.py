"""Finding, loading, ordering and registering centers.

Centers are found through the ``mallcore.centers`` entry-point group; the
first-party centers register there exactly as a third party does. Only the
entry points that config enables are imported. Order is declared, never
install order: a center runs after what it ``requires`` and what it lists in
``after``; ties are broken by name so the order is the same everywhere.
"""

from __future__ import annotations

import heapq
import operator
from collections.abc import Mapping, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from . import hookspecs
from .config import FIRST_PARTY_CENTERS, Config
from .errors import PluginError

ENTRY_POINT_GROUP = "mallcore.centers"
# The distribution whose entry points are first-party centers.
FIRST_PARTY_DISTRIBUTION = "mallcore"


def installed_centers() -> dict[str, EntryPoint]:
    """Entry points of every installed center, by name (nothing imported)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def default_enabled(installed: Mapping[str, EntryPoint]) -> list[str]:
    """What runs when config names no centers: every first-party center that is installed.

    A name counts only when mallcore's own distribution registers it, so a
    third-party package cannot become default-enabled by taking a
    first-party name.
    """
    return [
        name
        for name in FIRST_PARTY_CENTERS
        if name in installed and _distribution(installed[name]) == FIRST_PARTY_DISTRIBUTION
    ]


def _distribution(ep: EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return None if dist is None else dist.name


def enabled_centers(config: Config) -> list[str]:
    """``centers.enabled`` from config, else :func:`default_enabled`."""
    enabled = config.enabled_centers
    return default_enabled(installed_centers()) if enabled is None else enabled


def instantiate(obj: Any, name: str) -> Any:
    center = obj() if isinstance(obj, type) else obj
    declared = getattr(center, "name", None)
    if declared != name:
        raise PluginError(
            f"center registered as '{name}' declares name {declared!r}; the entry-point name "
            "and the center's name must be the same",
            center=name,
        )
    return center


def load_centers(enabled: Sequence[str], extra: Sequence[Any] = ()) -> list[Any]:
    """Import and instantiate the enabled centers, plus ``extra`` objects.

    ``extra`` are centers given directly (tests, embedding); they need no
    entry point but must be listed in ``enabled`` too, or they are added.
    """
    given = {}
    for obj in extra:
        name = getattr(obj, "name", None)
        if not isinstance(name, str):
            raise PluginError(f"{obj!r} has no 'name' attribute; every center needs one")
        given[name] = obj
    seen: set[str] = set()
    duplicates = sorted({n for n in enabled if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if duplicates:
        raise PluginError(f"centers.enabled lists {', '.join(duplicates)} more than once")
    available = installed_centers()
    centers = []
    for name in list(enabled) + [n for n in given if n not in enabled]:
        if name in given:
            centers.append(instantiate(given[name], name))
            continue
        ep = available.get(name)
        if ep is None:
            known = ", ".join(sorted(available)) or "none"
            raise PluginError(
                f"center '{name}' is enabled in config but not installed (installed: {known})",
                center=name,
            )
        try:
            obj = ep.load()
        except Exception as exc:
            raise PluginError(
                f"center '{name}' failed to import from {ep.value}: {exc}", center=name
            ) from exc
        centers.append(instantiate(obj, name))
    return centers


def order_centers(centers: Sequence[Any]) -> list[Any]:
    """Topologically order centers by ``requires`` and ``after``; name breaks ties."""
    by_name = {c.name: c for c in centers}
    for c in centers:
        for need in getattr(c, "requires", ()):
            if need not in by_name:
                raise PluginError(
                    f"center '{c.name}' requires center '{need}', which is not enabled; "
                    f"add '{need}' to centers.enabled",
                    center=c.name,
                )
        for other in getattr(c, "conflicts", ()):
            if other in by_name:
                raise PluginError(
                    f"centers '{c.name}' and '{other}' conflict and cannot both be enabled",
                    center=c.name,
                )
    before: dict[str, set[str]] = {n: set() for n in by_name}
    for c in centers:
        for dep in (*getattr(c, "requires", ()), *getattr(c, "after", ())):
            if dep in by_name and dep != c.name:
                before[c.name].add(dep)
    ready = [n for n, deps in before.items() if not deps]
    heapq.heapify(ready)
    ordered: list[str] = []
    while ready:
        name = heapq.heappop(ready)
        ordered.append(name)
        for other, deps in before.items():
            if name in deps:
                deps.discard(name)
                if not deps:
                    heapq.heappush(ready, other)
    if len(ordered) != len(by_name):
        stuck = sorted(set(by_name) - set(ordered))
        raise PluginError(f"centers {', '.join(stuck)} depend on each other in a cycle (requires/after)")
    return [by_name[n] for n in ordered]


def make_plugin_manager(
    centers: Sequence[Any], internal: Sequence[tuple[str, Any]] = ()
) -> pluggy.PluginManager:
    """One plugin manager per kernel, with centers registered in order.

    pluggy calls the most recently registered implementation first, so we
    register in reverse: the first center in order is called first.
    ``internal`` plugins (the kernel's own defaults) are registered before
    everything, so they run last.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name, plugin in internal:
        pm.register(plugin, name=name)
    for center in reversed(centers):
        try:
            pm.register(center, name=center.name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"center '{center.name}': {exc}", center=center.name) from exc
    # pluggy's check_pending() rule, with the center named: an implementation
    # of a hook mallcore does not declare is a typo unless marked optionalhook.
    unknown = [
        (impl.plugin_name, hook.name)
        for hook in (getattr(pm.hook, n) for n in dir(pm.hook) if not n.startswith("_"))
        if not hook.has_spec()
        for impl in hook.get_hookimpls()
        if not impl.optionalhook
    ]
    if unknown:
        center, hook = unknown[0]
        raise PluginError(
            f"center '{center}' implements '{hook}', which is not a mallcore hook (typo?)", center=center
        )
    return pm


def call_each(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """Call every implementation of a hook on its own; ``(plugin name, result)`` pairs in call order.

    For hooks whose results belong to the center that returned them (its
    routes, tables, jobs...). Every implementation counts, so a center that
    implements a hook twice (``specname``, or a helper object it registered)
    contributes both results. The call goes through pluggy's executor, so
    hook monitoring and tracing see it.
    """
    caller = getattr(pm.hook, hook_name)
    out = []
    for impl in reversed(caller.get_hookimpls()):  # pluggy calls the last registered first
        # The executor pluggy's own calls go through: monitoring and tracing wrap it.
        results: Any = pm._hookexec(hook_name, [impl], kwargs, False)
        out.append((impl.plugin_name, results[0] if results else None))
    return out


def commands_of_centers(config: Config) -> dict[str, list[Any]]:
    """The click commands each enabled center brings (``center_commands``), without a kernel.

    Only the centers are loaded and registered: no database, no settings.
    """
    pm = make_plugin_manager(order_centers(load_centers(enabled_centers(config))))
    out: dict[str, list[Any]] = {}
    for name, commands in call_each(pm, "center_commands"):
        out.setdefault(name, []).extend(commands or ())
    return out


class HookCalls:
    """The kernel's own way to call hooks: pluggy's order, less of its machinery.

    pluggy's generic caller supports wrappers, ``firstresult`` and collecting
    results on every call; the lifecycle hooks on the placement path use none
    of these, and that generality (about half a microsecond per
    implementation) was the whole measurable cost of the plugin machinery:
    ten no-op centers added 6% to a placement. For a hook without wrappers,
    the implementations are therefore called directly, in exactly the order
    pluggy would call them (center order, ``tryfirst`` / ``trylast``
    respected); for a ``firstresult`` hook (``resolve_principal``, on every
    request) the first answer that is not ``None`` is returned and the rest
    are not called, as pluggy does. A hook with wrappers, or a historic one,
    goes through pluggy. The list
    is computed once per kernel, whose centers never change after start-up.
    ``kernel.hook`` remains pluggy's own caller.

    While hook monitoring or tracing is on (``pm.add_hookcall_monitoring``,
    ``pm.enable_tracing``), every call goes through pluggy so they see it:
    both replace the plugin manager's ``_inner_hookexec``, which is compared
    with the one it had when this object was made.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._pm = pm
        self._plain = pm._inner_hookexec

    def implementers(self, name: str) -> list[Any]:
        """The center objects implementing hook ``name``."""
        return [impl.plugin for impl in getattr(self._pm.hook, name).get_hookimpls()]

    def excluding(self, name: str, plugins: list[Any]) -> Any:
        """Hook ``name``'s caller without ``plugins`` (pluggy's subset caller)."""
        return self._pm.subset_hook_caller(name, remove_plugins=plugins) if plugins else getattr(self, name)

    def __getattr__(self, name: str) -> Any:
        caller = getattr(self._pm.hook, name)
        impls = caller.get_hookimpls()
        opts = caller.spec.opts if caller.spec is not None else {}
        if opts.get("historic") or any(i.hookwrapper or i.wrapper for i in impls):
            call: Any = caller
        else:
            # pluggy calls the last registered first: its _multicall walks the list reversed.
            # Most lifecycle implementations take one argument (``ctx``): pass it directly;
            # several are picked in one step by an itemgetter.
            plan: list[tuple[Any, str | None, Any]] = []
            for impl in reversed(impls):
                names = tuple(impl.argnames)
                one = names[0] if len(names) == 1 else None
                plan.append((impl.function, one, None if len(names) < 2 else operator.itemgetter(*names)))

            pm, plain, pluggy_call = self._pm, self._plain, caller

            # firstresult (``resolve_principal``): as pluggy, the first answer that is not
            # None wins and the others are not called; other hooks' results are not used.
            first = bool(opts.get("firstresult"))

            def call(**kwargs: Any) -> Any:
                if pm._inner_hookexec is not plain:
                    result = pluggy_call(**kwargs)
                    return result if first else None
                for function, one, several in plan:
                    if one is not None:
                        result = function(kwargs[one])
                    elif several is not None:
                        result = function(*several(kwargs))
                    else:
                        result = function()
                    if first and result is not None:
                        return result
                return None

        setattr(self, name, call)
        return call
