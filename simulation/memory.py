"""What the simulator does only to save memory, in one place.

A year of a large team is hundreds of thousands of journeys, most of them waiting: months
of nurture, days between calls. Kept as they are, their states, generators and timers
grow the process by megabytes a simulated day. Each device below keeps what the rules and
the statistics need and lets the rest go; none of them changes a decision or a number
(``tests/test_simulation.py`` runs a replication with and without them and compares).

* ``forget_observed``: once every decision has been observed, a journey's state keeps only
  its latest log entry and stage change (all that ``decide`` reads).
* ``untimed_clocks``: a nurture expiry is not timed when no trace is kept; it changes no
  statistic, and the lead's qualifying engagement (found in advance) cancels it anyway.
* ``ArmedDeadline``: a journey keeps one timer, at its earliest deadline. SimPy cannot take
  a timeout out of its queue, so a timer no longer needed is cut loose from its journey and
  does not keep a finished lead alive; one still held back by ``simulation.timers`` (due
  after tomorrow) is dropped there and never queued.
* ``DormantJourney``: a nurturing lead with nothing to do until its qualifying event is
  kept as compressed bytes, not as a live journey (``Packer``: its records pickled as
  tuples of values, then compressed against a dictionary learnt from the run's first ones).
* ``BehaviourStream``: a lead's random stream holds its 2.5 kB generator only while in use (and its next few numbers).
* ``collector_off``: no automatic garbage collection while a replication runs (it makes no
  garbage cycles); collections walked every live journey, all of which lived on.
"""

from __future__ import annotations

import gc
import io
import operator
import pickle
import random
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from datetime import timezone
from enum import Enum
from typing import Any, Protocol, TypeVar

from leadflow.journey import Clock, DecisionEntry, DecisionKind, EscalationLevel, JourneyState, Outcome, Stage, StageChange
from leadflow.lead import EngagementKind, Lead, LeadSource
from simulation.unvalidated import unvalidated

J = TypeVar("J")

def forget_observed(state: JourneyState) -> None:
    """Drop what ``decide`` no longer reads once every decision has been observed."""
    if len(state.log) > 1:
        state.log = state.log[-1:]
    if len(state.stage_history) > 1:
        state.stage_history = state.stage_history[-1:]


def untimed_clocks(keeping_traces: bool) -> frozenset[Clock]:
    """The clocks whose deadlines are left untimed (see the module doc)."""
    return frozenset() if keeping_traces else frozenset({Clock.NURTURE})


class _Journey(Protocol):
    """What these devices need of a simulated journey (``simulation.model.LeadJourney``)."""

    person: Any
    state: JourneyState
    owner_work: tuple[str, int] | None

    def timer_fired(self) -> None: ...


class ArmedDeadline:
    """A pending SimPy timer's link to its journey, cut when the timer is no longer needed.

    SimPy cannot take a timeout out of its queue, so a timer still fires; cut loose, it no
    longer keeps a finished journey (and its lead) in memory until then.
    """

    __slots__ = ("journey",)

    def __init__(self, journey: _Journey):
        self.journey: _Journey | None = journey

    @property
    def cut(self) -> bool:
        return self.journey is None

    def fire(self) -> None:
        if self.journey is not None:
            self.journey.timer_fired()


def _from_values(cls: type) -> Callable[[tuple[Any, ...]], Any]:
    """A function building a ``cls`` dataclass from its field values in order, without its
    ``__init__`` (defaults, factories): what unpickling does, field by field."""
    names = [item.name for item in fields(cls)]
    body = "".join(f"    set_(built, {name!r}, values[{index}])\n" for index, name in enumerate(names))
    source = f"def build(values):\n    built = new(cls)\n{body}    return built\n"
    namespace: dict[str, Any] = {}
    exec(source, {"new": object.__new__, "cls": cls, "set_": object.__setattr__}, namespace)  # noqa: S102 - field names only
    build = namespace["build"]
    build.__qualname__ = build.__name__ = f"build_{cls.__name__}"
    build.__module__ = __name__  # so that pickle finds it by name, not by searching every module
    return build


# Unpickling needs the builders by name: one module attribute per packed dataclass.
_BUILDERS: dict[type, Callable[[tuple[Any, ...]], Any]] = {}


def _dataclass_reducer(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    build = _BUILDERS.get(cls)
    if build is None:
        build = _BUILDERS[cls] = _from_values(cls)
        globals()[build.__name__] = build
    values = operator.attrgetter(*(item.name for item in fields(cls)))
    return lambda instance: (build, (values(instance),))


def _lead_values(lead: Lead) -> tuple[Any, ...]:
    """A lead with every field set (as the simulator draws them) goes as its values in order."""
    if len(lead.__pydantic_fields_set__) == len(_LEAD_FIELDS) and lead.__pydantic_extra__ is None:
        return _lead_from_values, (_lead_field_values(lead.__dict__),)
    return lead.__reduce_ex__(pickle.HIGHEST_PROTOCOL)  # type: ignore[return-value]


def _lead_from_values(values: tuple[Any, ...]) -> Lead:
    return unvalidated(Lead, dict(zip(_LEAD_FIELDS, values, strict=True)))


class _Reductions(dict[Any, tuple[Any, ...]]):
    """Ready-made pickle reductions of a type's usual instances, looked up in C (a dispatch
    table entry that is ``dict.__getitem__`` costs no Python call); an instance not listed
    reduces as usual."""

    def __missing__(self, instance: Any) -> tuple[Any, ...]:
        return instance.__reduce_ex__(pickle.HIGHEST_PROTOCOL)


def _enum_members(enum: type[Enum]) -> _Reductions:
    """An enum's members pickled by name: the member itself comes back when unpickled."""
    return _Reductions({member: (getattr, (enum, member._name_)) for member in enum})


# UTC as the one ``timezone.utc``: pickled by value, every woken datetime got a zone of its
# own, and missed the core's fast path for ``tzinfo is timezone.utc``.
_TIME_ZONES = _Reductions({timezone.utc: (getattr, (timezone, "utc"))})


_LEAD_FIELDS = tuple(Lead.model_fields)
_lead_field_values = operator.itemgetter(*_LEAD_FIELDS)
_ENUMS = (Stage, Clock, EscalationLevel, Outcome, DecisionKind, LeadSource, EngagementKind)


class Packer:
    """Packs dormant journeys with a preset compression dictionary.

    A packed journey is a few hundred bytes of pickle, too short for zlib to find much to
    reuse within itself; what repeats is across journeys (field names, enum and class
    references, routing names). So the first ``_LEARN_FROM`` journeys of a run are packed
    alone, and their pickles become the dictionary every later one is packed against
    (several times smaller for a nurturing lead). Lossless, and learnt from the run
    itself, so the same seed gives the same run.
    """

    __slots__ = ("_zdict", "_samples", "_buffer", "_pickler", "_primed")
    _LEARN_FROM = 16
    _ZDICT_BYTES = 4096  # setting up a bigger dictionary costs more than it saves
    # An 8 kB window holds the dictionary and a journey. zlib's default (32 kB) packs no
    # smaller and costs several times as much to set up, once per journey.
    _WINDOW_BITS = 13
    # A compressor with the dictionary loaded is copied per journey, which costs what its
    # tables weigh: at memory level 4 (zlib's default is 8: a hash table 16 times bigger) a
    # nurture packs about as small (130 bytes against 127) at half the cost of copying.
    _MEM_LEVEL = 4

    def __init__(self, dataclasses: tuple[type, ...] = ()) -> None:
        """``dataclasses``: the simulator's own records packed with each journey (its person)."""
        self._zdict: bytes | None = None
        self._primed: Any = None  # a compressor with the dictionary loaded, copied per journey
        self._samples: list[bytes] = []
        # One pickler, reused: a journey's records go as tuples of their values and its enum
        # members by name, not through the generic protocol's Python-level hooks.
        self._buffer = io.BytesIO()
        self._pickler = pickle.Pickler(self._buffer, pickle.HIGHEST_PROTOCOL)
        table: dict[type, Callable[[Any], tuple[Any, ...]]] = {
            cls: _dataclass_reducer(cls) for cls in (JourneyState, DecisionEntry, StageChange, *dataclasses)}
        table[Lead] = _lead_values
        table.update({enum: _enum_members(enum).__getitem__ for enum in _ENUMS})
        table[timezone] = _TIME_ZONES.__getitem__
        self._pickler.dispatch_table = table

    def _pickled(self, parts: tuple[Any, ...]) -> bytes:
        buffer, pickler = self._buffer, self._pickler
        buffer.seek(0)
        buffer.truncate()
        pickler.clear_memo()
        pickler.dump(parts)
        return buffer.getvalue()

    def pack(self, parts: tuple[Any, ...]) -> bytes:
        raw = self._pickled(parts)
        if self._zdict is None:
            self._samples.append(raw)
            if len(self._samples) >= self._LEARN_FROM:
                self._zdict = b"".join(self._samples)[-self._ZDICT_BYTES:]
                self._primed = zlib.compressobj(1, zlib.DEFLATED, self._WINDOW_BITS, self._MEM_LEVEL, zdict=self._zdict)
                self._samples = []
            return b"\0" + zlib.compress(raw, 1)
        compressor = self._primed.copy()
        return b"\1" + compressor.compress(raw) + compressor.flush()

    def unpack(self, packed: bytes) -> Any:
        body = memoryview(packed)[1:]
        if packed[0] == 0 or self._zdict is None:
            return pickle.loads(zlib.decompress(body))
        return pickle.loads(zlib.decompressobj(zdict=self._zdict).decompress(body))


class DormantJourney:
    """A nurturing lead put away until its next event: a few hundred bytes, not a live journey.

    It is packed once the current instant's work is done, not at once: a rep's process that
    just recycled the lead still draws from the lead's random stream in the same step, and
    the packed copy must carry that draw, as the live journey would.
    """

    __slots__ = ("journey", "packed", "packer")

    def __init__(self, journey: _Journey, packer: Packer):
        self.journey: _Journey | None = journey
        self.packed = b""
        self.packer = packer

    def pack(self, _event: object = None) -> None:
        journey = self.journey
        if journey is not None:
            self.packed = self.packer.pack((journey.person, journey.state, journey.owner_work))
            self.journey = None

    def wake(self, restore: Callable[[Any, JourneyState, tuple[str, int] | None], J]) -> J | _Journey:
        """The journey as it was put away (``restore(person, state, owner_work)`` rebuilds it)."""
        if self.journey is not None:
            return self.journey
        return restore(*self.packer.unpack(self.packed))


class BehaviourStream:
    """A lead's own stream of uniform draws: ``random.Random(seed)``, held only while in use.

    A ``random.Random`` holds 2.5 kB of state, more than the rest of a journey in waiting, and
    a rep's lead waits days between calls. So the stream keeps its seed and how many draws
    it has given; ``rest()`` lets the generator go, keeping the next few numbers it would
    give (a lead draws one to three per step), and a draw past those rebuilds the generator
    and skips ahead: exactly the numbers one long-lived generator would give, with a
    generator rebuilt every few steps, not every step. Pickled, a stream is its seed and count.
    """

    __slots__ = ("seed", "draws", "_rng", "_ahead")

    AHEAD = 8  # numbers kept when the generator goes: about 250 bytes, not 2.5 kB

    def __init__(self, seed: int):
        self.seed = seed
        self.draws = 0
        self._rng: random.Random | None = None
        self._ahead: list[float] = []  # the next numbers, last one first

    def random(self) -> float:
        rng = self._rng
        if rng is None:
            if self._ahead:
                self.draws += 1
                return self._ahead.pop()
            rng = self._rng = random.Random(self.seed)
            for _ in range(self.draws):
                rng.random()
        self.draws += 1
        return rng.random()

    def rest(self) -> None:
        rng = self._rng
        if rng is not None:
            ahead = [rng.random() for _ in range(self.AHEAD)]
            ahead.reverse()
            self._ahead = ahead
            self._rng = None

    def __getstate__(self) -> tuple[int, int]:
        return self.seed, self.draws

    def __setstate__(self, state: tuple[int, int]) -> None:
        self.seed, self.draws = state
        self._rng = None
        self._ahead = []


@contextmanager
def collector_off() -> Iterator[None]:
    """Turn automatic garbage collection off for the duration; the caller's setting comes
    back afterwards.

    A replication makes no cyclic garbage: what it lets go is freed by reference counting
    (``tests/test_simulation.py`` holds every bundled scenario to that). So collecting while
    it runs frees nothing and costs a lot: each young collection walked every object made
    since the last, and they all lived on (a year of 5,000 reps: 5 to 7% of the run, and
    each full collection half a second or more as the heap grew). Nor is anything collected
    or frozen first: a full collection of what the process holds costs 40-50 ms, a tenth
    of a small replication, and garbage made before the run waits for the collector after it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
