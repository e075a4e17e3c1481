"""Routers: each role's commands and dialogs, declared as objects and combined in one place."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from storage.models import Role

if TYPE_CHECKING:
    from handlers.core import Answer, Context

Handler = Callable[["Context"], None]
# A step is asked with answer=None, then given each answer until it moves on.
StepFn = Callable[["Context", "Answer | None"], None]
EVERYONE: frozenset[Role] = frozenset(Role)


class RoutingError(Exception):
    """Two commands or steps under one name, or a declared step without its function."""


@dataclass(frozen=True)
class Command:
    """A command name, who may use it, and what it does."""

    name: str
    run: Handler
    roles: frozenset[Role]


@dataclass
class Flow:
    """A dialog: its steps declared once, in order, each with the function that asks it."""

    name: str
    order: tuple[str, ...]
    steps: dict[str, StepFn] = field(default_factory=dict)
    cancelled: str | None = None  # a msgid saying what stays as it was when the dialog is cancelled
    for_staff: bool = False  # its shared steps speak to an officer entering for a worker

    def step(self, name: str) -> Callable[[StepFn], StepFn]:
        """Attach the function of a declared step."""
        if name not in self.order:
            raise RoutingError(f"dialog {self.name!r} declares no step {name!r}")
        if name in self.steps:
            raise RoutingError(f"dialog {self.name!r} has two functions for step {name!r}")

        def attach(function: StepFn) -> StepFn:
            self.steps[name] = function
            return function

        return attach

    @property
    def first(self) -> str:
        """The step a dialog starts at."""
        return self.order[0]

    def after(self, name: str) -> str:
        """The step declared after this one."""
        return self.order[self.order.index(name) + 1]


class Router:
    """One role's commands and dialogs."""

    def __init__(self, name: str, roles: Iterable[Role] = EVERYONE) -> None:
        self.name = name
        self.roles = frozenset(roles)
        self.commands: list[Command] = []
        self.flows: list[Flow] = []
        self.fallback: Handler | None = None

    def command(self, name: str, roles: Iterable[Role] | None = None) -> Callable[[Handler], Handler]:
        """Declare a command of this router's roles (or of fewer roles)."""

        def register(function: Handler) -> Handler:
            if any(c.name == name for c in self.commands):
                raise RoutingError(f"router {self.name!r} declares /{name} twice")
            self.commands.append(Command(name, function, frozenset(roles) if roles is not None else self.roles))
            return function

        return register

    def flow(self, name: str, steps: Iterable[str], *, cancelled: str | None = None,
             for_staff: bool = False) -> Flow:
        """Declare a dialog, the order of its steps, and what "cancel" leaves as it was."""
        flow = Flow(name, tuple(steps), cancelled=cancelled, for_staff=for_staff)
        self.flows.append(flow)
        return flow

    def otherwise(self, function: Handler) -> Handler:
        """What to do with text, files or old buttons when no dialog is open."""
        self.fallback = function
        return function


class Routes:
    """All routers combined, in the order given; refuses duplicates and missing steps."""

    def __init__(self, routers: Iterable[Router]) -> None:
        self.routers = list(routers)
        self.commands: dict[str, list[Command]] = {}
        self.flows: dict[str, Flow] = {}
        fallbacks = [r.fallback for r in self.routers if r.fallback is not None]
        if len(fallbacks) != 1:
            raise RoutingError(f"exactly one router must say what happens outside dialogs, not {len(fallbacks)}")
        self.fallback: Handler = fallbacks[0]
        for router in self.routers:
            for cmd in router.commands:
                clash = [c for c in self.commands.get(cmd.name, []) if c.roles & cmd.roles]
                if clash:
                    raise RoutingError(f"/{cmd.name} is declared twice for the same role ({router.name})")
                self.commands.setdefault(cmd.name, []).append(cmd)
            for flow in router.flows:
                if flow.name in self.flows:
                    raise RoutingError(f"two dialogs are named {flow.name!r}")
                missing = [s for s in flow.order if s not in flow.steps]
                if missing:
                    raise RoutingError(f"dialog {flow.name!r} has no function for {', '.join(missing)}")
                self.flows[flow.name] = flow

    def command_for(self, name: str, role: Role) -> Command | None:
        """The command of this name that this role may use (None: unknown to them)."""
        return next((c for c in self.commands.get(name, []) if role in c.roles), None)

    def step(self, flow: str | None, step: str | None) -> StepFn | None:
        """The function of a stored dialog position (None if it no longer exists)."""
        found = self.flows.get(flow or "")
        return found.steps.get(step or "") if found else None
