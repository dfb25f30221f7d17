"""The *forbidden* shape: an event that must never happen (the rulebook's 不得 rules). Each
matching event is a decision about the subject it names, with the event as its evidence:
a benefit taken from a resident while handling a complaint (不得…乘機索取好處)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import model_validator

from ..models.decisions import DecisionKind, Subject
from ..models.events import EventBase
from ._base import (
    Match,
    Message,
    Partition,
    PolicyInfo,
    RuleContext,
    RuleRuntime,
    RuleSpec,
    SubjectRef,
    _check_field,
    event_value,
    keyed_by,
    local_iso,
)

__all__ = ["ForbiddenSpec"]


class ForbiddenSpec(RuleSpec):
    """Every ``event`` (matched with its ``where`` conditions) is an ``occurred`` decision of
    ``kind`` about the subject named by its ``subject`` field. ``show`` lists event fields
    copied into the details (and so usable in messages)."""

    shape: Literal["forbidden"] = "forbidden"
    event: Match
    """The event that must never happen (with its conditions)."""
    subject: SubjectRef
    """Who the decisions are about: a kind and the event field holding the id."""
    kind: DecisionKind = "violation"
    """The kind of the ``occurred`` decisions."""
    show: tuple[str, ...] = ()
    """Event fields copied into the details (and so usable in messages)."""

    message_fields: ClassVar[frozenset[str]] = frozenset({
        "at", "event", "event_type", "what",
    })

    default_messages: ClassVar[dict[str, Message]] = {
        "occurred": Message(
            en="{rule}: {what} — {subject} at {at}",
            zh="{rule}：{subject} 於 {at}「{what}」"),
    }

    @model_validator(mode="after")
    def _valid(self) -> ForbiddenSpec:
        _check_field(self.event.type, self.subject.field, what="subject.field")
        for f in self.show:
            _check_field(self.event.type, f, what="show")
        return self

    def event_types(self) -> frozenset[str]:
        return frozenset(self.event.type)

    def partition(self) -> Partition | str:
        return keyed_by([(self.event.type, self.subject.field)], subject_keyed=True)

    def runtime(self, policy: PolicyInfo) -> RuleRuntime:
        return _ForbiddenRuntime(self, policy)


class _ForbiddenRuntime(RuleRuntime):
    """Stateless: each event is judged on its own."""

    spec: ForbiddenSpec

    def __init__(self, spec: ForbiddenSpec, policy: PolicyInfo) -> None:
        super().__init__(spec, policy)
        self._pred = spec.event.predicate()
        self._what = spec.title or spec.id

    def on_event(self, event: EventBase, ctx: RuleContext) -> None:
        s = self.spec
        if not self._pred(event):
            return
        subject_id = event_value(event, s.subject.field)
        if subject_id is None:
            return
        details: dict[str, Any] = {
            "what": self._what, "event": event.id, "event_type": event.type,
            "at": local_iso(ctx, event.at)}
        for f in s.show:
            value = event_value(event, f)
            # Details stay JSON-plain: scalars as they are, anything else as text.
            details[f] = value if value is None or isinstance(value, str | int | bool) \
                else str(value)
        ctx.emit(s, "occurred", kind=s.kind, subject=Subject(kind=s.subject.kind,
                                                             id=str(subject_id)),
                 at=event.at, evidence=[event.id], key=event.id, details=details)
