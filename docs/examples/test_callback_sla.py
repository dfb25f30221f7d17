"""A property test of a custom policy (docs/testing.md): run it with
``pytest docs/examples`` once policykit is installed (the plugin's fixtures load by
themselves)."""

from hypothesis import given, settings

from policykit.testing import request_lives


@settings(max_examples=50, deadline=None)
@given(stream=request_lives())
def test_a_request_is_flagged_exactly_at_its_deadline(stream, policykit_engine,
                                                      business_calendar):
    engine = policykit_engine("callback-sla.yaml")
    contacts = {e.request_id: e for e in stream if e.type == "contact.received"}
    for d in engine.evaluate(stream.events, until=stream.until):
        if d.kind == "violation":
            first = contacts[d.subject.id]
            due = business_calendar.deadline(first.at, "PT2H", basis="working")
            assert d.at == due          # not a second early, not a second late
            assert first.id in d.evidence
