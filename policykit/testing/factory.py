"""An event factory for hand-written tests: valid events with sensible defaults, automatic
ids, and a clock that moves forward with each event.

>>> f = EventFactory(start="2026-03-02 08:30")
>>> f.profile("E1", salary="6000.00")                          # doctest: +SKIP
>>> f.make("attendance.clock_in", at="2026-03-02 08:30:01")    # doctest: +SKIP
>>> f.make("attendance.clock_out", at="PT9H")                  # 9 hours later  # doctest: +SKIP
>>> engine.evaluate(f.log, until=f.time("2026-04-01 00:00"))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ..calendar import parse_duration
from ..errors import ParameterError, nearest
from ..models.events import EVENT_TYPES, EventBase
from ..models.parsing import parse_event
from ._model import FieldShape, field_shapes, pool_for
from .strategies import Stream

__all__ = ["EventFactory"]

When = datetime | str | timedelta

# Where the first choice of a literal or pool would read oddly, a better default.
_DEFAULTS: dict[tuple[str, str], Any] = {
    ("request.handed_over", "to_employee"): "M1",
    ("request.handed_over", "to_role"): "manager",
    ("incident.notified", "recipients"): ["sales_owner", "manager", "departments"],
    ("shift.handover_recorded", "to_guard"): "G2",
}


class EventFactory:
    """Builds valid events: give the type and the fields you care about; every other
    required field gets a default read off the model (the first id of its pool such as
    ``E1``/``R1``/``G1``, ``True`` for flags, the first choice of a literal, every choice of a
    list of literals, ``6000.00`` for money, the event's own date or time for dates).

    ``at`` may be an aware datetime, a local time string in the factory's zone
    (``"2026-03-02 08:30:01"``), an ISO-8601 string with offset, an ISO duration
    (``"PT15M"``: that long after the previous event) or a timedelta (the same). Without it,
    an event comes ``step`` after the previous one (the first at ``start``). Every event made
    is kept in :attr:`log`, in the order made.
    """

    def __init__(self, start: When = "2026-03-02 08:30", tz: str | tzinfo = "Asia/Shanghai", *,
                 step: timedelta = timedelta(minutes=1), id_prefix: str = "f",
                 defaults: Mapping[str, Any] | None = None) -> None:
        self.tz: tzinfo = ZoneInfo(tz) if isinstance(tz, str) else tz
        self.step = step
        self.id_prefix = id_prefix
        self.defaults: dict[str, Any] = dict(defaults or {})
        """Field name -> value used wherever that field is not given (``employee_id``...)."""
        self.log: list[EventBase] = []
        self._count = 0
        if isinstance(start, timedelta) or (isinstance(start, str) and start.startswith("P")):
            raise ParameterError("start", start, "a date-time, e.g. '2026-03-02 08:30'")
        self.now: datetime = datetime.min.replace(tzinfo=UTC)
        self.now = self.time(start)

    # ----------------------------------------------------------------- time

    def time(self, when: When) -> datetime:
        """An aware instant from any accepted ``at`` form (relative ones from :attr:`now`)."""
        if isinstance(when, timedelta):
            return self.now + when
        if isinstance(when, datetime):
            if when.tzinfo is None:
                return self._local(when)
            return when
        if isinstance(when, str):
            text = when.strip()
            if text.startswith("P"):
                return self.now + parse_duration(text)
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                raise ParameterError("at", when, "a date-time such as '2026-03-02 08:30', "
                                     "'2026-03-02T08:30:00+08:00', or a duration 'PT15M'") from None
            return parsed if parsed.tzinfo is not None else self._local(parsed)
        raise ParameterError("at", when, "a datetime, a date-time string or a duration")

    def _local(self, naive: datetime) -> datetime:
        # Normalised through UTC, so a wall time in a DST gap moves forward like the
        # calendar's own ``at``.
        return naive.replace(tzinfo=self.tz).astimezone(UTC).astimezone(self.tz)

    def advance(self, delta: timedelta | str) -> datetime:
        """Move the clock forward (``"PT1H"`` or a timedelta); the new time."""
        self.now = self.now + (parse_duration(delta) if isinstance(delta, str) else delta)
        return self.now

    def set_time(self, when: When) -> datetime:
        """Put the clock at ``when``: the next event without ``at`` comes ``step`` after it."""
        self.now = self.time(when)
        return self.now

    # ----------------------------------------------------------------- events

    def next_id(self) -> str:
        self._count += 1
        return f"{self.id_prefix}{self._count}"

    def fields(self, type: str, at: datetime, **given: Any) -> dict[str, Any]:
        """The wire record ``make`` would validate: ``given`` plus defaults."""
        model = EVENT_TYPES.get(type)
        if model is None:
            raise ParameterError("type", type, "an event type (see policykit.EVENT_TYPES)",
                                 suggestion=nearest(type, EVENT_TYPES))
        record: dict[str, Any] = {"type": type, "at": at}
        for shape in field_shapes(model):
            if shape.name in ("type", "at", "id"):
                continue
            if shape.name in given:
                record[shape.name] = given[shape.name]
            elif shape.name in self.defaults and shape.name not in ("actor", "meta"):
                record[shape.name] = self.defaults[shape.name]
            elif shape.required:
                record[shape.name] = _default(shape, type, at)
        unknown = set(given) - set(record) - {"id", "actor", "meta"}
        for name in sorted(unknown):
            raise ParameterError(f"{type}.{name}", given[name], "a field of " + type,
                                 suggestion=nearest(name, model.model_fields))
        for name in ("actor", "meta"):
            if name in given:
                record[name] = given[name]
        return record

    def make(self, type: str, at: When | None = None, *, id: str | None = None,
             **fields: Any) -> EventBase:
        """A validated event of ``type``; see the class docstring for ``at`` and defaults."""
        when = self.time(at) if at is not None else \
            (self.now + self.step if self.log else self.now)
        record = self.fields(type, when, **fields)
        record["id"] = id if id is not None else self.next_id()
        event = parse_event(record, source=f"EventFactory.make({type!r})")
        self.now = when
        self.log.append(event)
        return event

    def wire(self, type: str, at: When | None = None, **fields: Any) -> dict[str, Any]:
        """Like :meth:`make`, as the JSON-ready dict of the wire format."""
        return self.make(type, at, **fields).model_dump(mode="json", exclude_none=True)

    def stream(self, until: When | None = None) -> Stream:
        """The events made so far as a :class:`~policykit.testing.Stream`."""
        return Stream(tuple(self.log), self.time(until) if until is not None else None)

    def clear(self) -> None:
        """Forget the events made (the clock and the id counter keep going)."""
        self.log.clear()

    # ----------------------------------------------------------------- shortcuts

    def profile(self, employee_id: str = "E1", role: str = "customer_service",
                salary: str | Decimal = "6000.00", at: When | None = None,
                **fields: Any) -> EventBase:
        """An ``employee.profile`` (who someone is and their base salary)."""
        return self.make("employee.profile", at, employee_id=employee_id, role=role,
                         base_salary=salary, **fields)

    def clock_in(self, employee_id: str = "E1", at: When | None = None) -> EventBase:
        return self.make("attendance.clock_in", at, employee_id=employee_id)

    def clock_out(self, employee_id: str = "E1", at: When | None = None) -> EventBase:
        return self.make("attendance.clock_out", at, employee_id=employee_id)


def _default(shape: FieldShape, type_: str, at: datetime) -> Any:
    """A sensible value for a required field nobody gave."""
    if (type_, shape.name) in _DEFAULTS:
        return _DEFAULTS[(type_, shape.name)]
    if shape.default is not None:
        return shape.default
    if shape.kind == "literal":
        return shape.choices[0]
    if shape.kind == "bool":
        return True  # the compliant reading: registered, admitted, in uniform...
    if shape.kind == "int":
        return max(0, int(shape.ge or 0))
    if shape.kind == "decimal":
        return "6000.00"
    if shape.kind == "str":
        return "CNY" if shape.pattern else pool_for(shape.name, type_)[0]
    if shape.kind == "date":
        return at.date()
    if shape.kind == "datetime":
        # promised_by, valid_until: a day ahead; valid_from: the event's own time;
        # started_at (a session's end names its start): an hour before.
        if shape.name == "started_at":
            return at - timedelta(hours=1)
        return at if shape.name.endswith("from") else at + timedelta(days=1)
    if shape.kind == "list":
        assert shape.item is not None
        return list(shape.item.choices) if shape.item.kind == "literal" else []
    if shape.kind == "model":  # its required fields filled the same way (a registered
        assert shape.model is not None  # model's nested location: building, floor)
        return {s.name: _default(s, type_, at) for s in field_shapes(shape.model)
                if s.required}
    return None
