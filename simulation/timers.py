"""The simulator's timers: SimPy's queue for what is due soon, day buckets for the rest.

A year of a large team keeps tens of thousands of timers waiting, and about half of them
are days or weeks away: an SQL's stall deadline, a close weeks out, and many deadlines a
decision has since cancelled or moved (``simulation.memory.ArmedDeadline``; SimPy cannot
take a timeout out of its queue). Every one of them makes each step of SimPy's heap deeper
and colder, and a cancelled one still has to be popped.

So a timer due after tomorrow waits in a bucket of its day, outside SimPy. At the start of
each day (``_move``), the bucket of the day after is put into SimPy's queue, in the order
its timers were set, leaving out the deadlines cancelled meanwhile. Nothing fires at another time
or in another order than it would have straight from SimPy's queue:

* A timer fires at the very instant it was set for: a bucket is moved at a whole number of
  hours, and a timer's instant less a whole number of hours before it is exact in floating
  point, so SimPy's ``now + delay`` gives that instant back.
* Timers due at the same instant fire in the order they were set, as in SimPy: a bucket
  keeps that order, and a timer is set straight into SimPy only once its day's bucket has
  been moved, so after every timer of that bucket.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, Protocol

import simpy

DAY_HOURS = 24


class Cancellable(Protocol):
    """A timer's owner that can be cut loose (``simulation.memory.ArmedDeadline``)."""

    @property
    def cut(self) -> bool: ...


class Timers:
    """Timers on one SimPy environment, the far ones held back by day."""

    __slots__ = ("env", "_far", "_moved_through")

    def __init__(self, env: simpy.Environment):
        """``env``: a new environment (at hour 0, so that days start at whole hours)."""
        if env.now != 0:
            raise ValueError(f"Timers need a new SimPy environment (at 0), not one at {env.now}")
        self.env = env
        self._far: dict[int, list[tuple[float, Callable[[Any], None], Cancellable | None]]] = {}
        self._moved_through = 1  # the last day whose timers go straight into SimPy's queue
        env.process(self._move())

    def after(self, delay: float, callback: Callable[[Any], None], cancellable: Cancellable | None = None) -> None:
        """``callback(event)`` after ``delay`` hours, as ``env.timeout(delay)`` would; not at
        all if ``cancellable`` is cut before the timer reaches SimPy's queue."""
        env = self.env
        at = env.now + delay  # the instant SimPy would fire it at
        day = int(at // DAY_HOURS)
        if day <= self._moved_through:
            env.timeout(delay).callbacks.append(callback)
        else:
            bucket = self._far.get(day)
            if bucket is None:
                bucket = self._far[day] = []
            bucket.append((at, callback, cancellable))

    def _move(self) -> Generator[simpy.Event, Any, None]:
        """Each day at midnight (simulated hours since the start), put the day after's timers in SimPy's queue."""
        env = self.env
        while True:
            yield env.timeout(DAY_HOURS)
            self._moved_through += 1
            now = env.now
            for at, callback, cancellable in self._far.pop(self._moved_through, ()):
                if cancellable is None or not cancellable.cut:
                    env.timeout(at - now).callbacks.append(callback)

    def __len__(self) -> int:
        """Timers held back outside SimPy's queue."""
        return sum(len(bucket) for bucket in self._far.values())
