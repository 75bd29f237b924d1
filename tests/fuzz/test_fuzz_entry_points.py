"""Property-based fuzzing of both entry points, called as the Functions host calls them.

- ``pool_requests`` (Service Bus): arbitrary JSON and mutations of a valid request.
  Never raises for a permanent error; a rejection names the field; invalid input
  never causes an ARM write.
- ``resource_events`` (Event Grid): mutations of the published samples and of
  events the emulator emitted during a real run. Never raises; never writes.

Bounded and derandomized, so the suite stays fast and repeatable.
"""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

import azure.functions as func
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rehearsal.host import event_grid_event, service_bus_message
from rehearsal.runner import Rehearsal
from rehearsal.scenario import Scenario, default_request
from shared import bootstrap
from tests.support import load_fixture

WRITES = ("PUT", "PATCH", "POST", "DELETE")
FUZZ = settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))

_ids = itertools.count(1)

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
    st.sampled_from(["", " ", "\u0000", "\u202e", "💥" * 20, "9" * 400, "/subscriptions/", "..", "PT5M", "P1000Y"]),
)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=12)


# An alert published about an event that names one of our locks as deleted is the app doing its job, not a write to
# Azure's resources: the alerts topic is left out of the count.
ALERTS_TOPIC = "POST Microsoft.EventGrid/topics"


def writes(emulator) -> int:
    return sum(n for op, n in emulator.calls.items() if op.split(" ", 1)[0] in WRITES and op != ALERTS_TOPIC)


@pytest.fixture(scope="module")
def world():
    """A world that has run one request to READY (pool, image, locks exist): events can name real resources."""
    rehearsal = Rehearsal(Scenario.model_validate({"steps": [{"submit": default_request()}, {"runUntilIdle": True}]})).run()
    assert rehearsal.ledger.get("team-a-render-001").stage.value == "READY"
    bootstrap.install(rehearsal.services)
    yield rehearsal
    bootstrap.install(None)


def deliver_request(world: Rehearsal, body: bytes, message_id: str):
    before = writes(world.emulator)
    world.host.call("pool_requests", service_bus_message(body=body, message_id=message_id, reply_to=None, delivery_count=1))
    return before


# -- Service Bus -------------------------------------------------------------------

PATHS = [
    ("requestId",), ("requestedBy",), ("source",), ("source", "virtualMachineId"), ("image",), ("image", "galleryId"),
    ("image", "hyperVGeneration"), ("image", "legacyManagedImage"), ("pool",), ("pool", "batchAccountId"), ("pool", "poolName"),
    ("pool", "vmSize"), ("pool", "nodeAgentSkuId"), ("pool", "targetDedicatedNodes"), ("pool", "targetLowPriorityNodes"),
    ("pool", "resizeTimeout"), ("pool", "metadata"),
]


@st.composite
def mutated_requests(draw):
    """A valid request with one mutation; returns (body text, the mutated field path)."""
    request = default_request()
    request["requestId"] = f"fuzz-{next(_ids)}"
    # A pool name of its own: pool names are unique in an account, so only the mutation can make it invalid.
    request["pool"]["poolName"] = f"fuzz-pool-{next(_ids)}"
    path = draw(st.sampled_from(PATHS))
    parent = request
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    kind = draw(st.sampled_from(["drop", "retype", "nest", "huge", "unicode", "unknown", "duplicate"]))
    if kind == "drop":
        parent.pop(key, None)
    elif kind == "retype":
        parent[key] = draw(json_values)
    elif kind == "nest":
        parent[key] = draw(st.sampled_from([[parent.get(key)], {"value": parent.get(key)}, {key: parent.get(key)}]))
    elif kind == "huge":
        parent[key] = draw(st.sampled_from([10**20, -(10**20), 2**63, 1e308, -0.0]))
    elif kind == "unicode":
        parent[key] = draw(st.text(min_size=1, max_size=30).map(lambda t: t + "\u0301\ufeff"))
    elif kind == "unknown":
        key = draw(st.text(min_size=1, max_size=10)) + "X"
        parent[key] = draw(json_values)
        path = (*path[:-1], key)
    text = json.dumps(request, ensure_ascii=draw(st.booleans()))
    if kind == "duplicate":
        # A second "requestId" key earlier in the object: JSON parsers keep the last one.
        text = text.replace("{", '{"requestId": ' + json.dumps(draw(json_values)) + ", ", 1)
    return text, ".".join(path), kind


class TestServiceBusEntryPoint:
    @FUZZ
    @given(body=json_values)
    def test_arbitrary_json_is_rejected_without_raising_or_writing(self, world, body):
        message_id = f"fuzz-raw-{next(_ids)}"
        before = deliver_request(world, json.dumps(body).encode(), message_id)
        records = [r for r in world.ledger.list_recent(100_000) if r.request_id in (message_id, (body or {}).get("requestId") if isinstance(body, dict) else None)]
        assert records and all(r.stage.value == "REJECTED" and r.reason for r in records)
        assert writes(world.emulator) == before

    @FUZZ
    @given(body=st.binary(max_size=200))
    def test_arbitrary_bytes_are_rejected_without_raising_or_writing(self, world, body):
        message_id = f"fuzz-bytes-{next(_ids)}"
        before = deliver_request(world, body, message_id)
        assert world.ledger.get(message_id).stage.value == "REJECTED" if not _valid_json_object(body) else True
        assert writes(world.emulator) == before

    @FUZZ
    @given(case=mutated_requests())
    def test_a_mutated_request_is_rejected_naming_the_field_or_accepted_as_valid(self, world, case):
        text, path, kind = case
        request_id = json.loads(text).get("requestId")
        message_id = f"fuzz-msg-{next(_ids)}"
        before = deliver_request(world, text.encode(), message_id)
        record = _record_for(world, request_id, message_id)
        if record.stage.value == "REJECTED":
            assert writes(world.emulator) == before, (path, kind, record.reason)
            # The reason names the mutated field (or the object holding it, when that is what broke).
            assert path in record.reason or path.split(".")[0] in record.reason, (path, kind, record.reason)
        else:
            # The mutation left a valid request (e.g. an optional field dropped): the work starts as usual.
            assert record.stage.value in ("RECEIVED", "SNAPSHOTTING", "IMAGING", "PUBLISHING", "CREATING_POOL"), (path, kind, record.reason)


def _valid_json_object(body: bytes) -> bool:
    try:
        return isinstance(json.loads(body), dict)
    except ValueError:
        return False


def _record_for(world, request_id, message_id):
    from shared.model.request import request_id_for_message
    from shared.store.ledger import RequestNotFound

    for candidate in (request_id, request_id_for_message(message_id)):
        if isinstance(candidate, str):
            try:
                return world.ledger.get(candidate)
            except RequestNotFound:
                continue
    raise AssertionError(f"no record for {request_id!r} / {message_id!r}")


# -- Event Grid ------------------------------------------------------------------------

def _samples(world) -> list[dict]:
    samples = [
        load_fixture("eventgrid/eventgrid-resource-write-success.egschema.json"),
        load_fixture("eventgrid/eventgrid-resource-delete-success.egschema.json"),
        *load_fixture("eventgrid/eventgrid-subscription-validation-event.egschema.json"),
    ]
    return samples + [e.body for e in world.emulator.events.emitted]


EVENT_KEYS = ["id", "eventType", "subject", "data", "topic", "eventTime", "dataVersion"]
DATA_KEYS = ["resourceUri", "operationName", "status", "correlationId", "httpRequest", "authorization", "resourceProvider"]
EVENT_TYPES = [f"Microsoft.Resources.Resource{a}{o}" for a in ("Write", "Delete", "Action") for o in ("Success", "Failure", "Cancel")]


@st.composite
def mutated_events(draw, samples):
    event = copy.deepcopy(draw(st.sampled_from(samples)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        target = draw(st.sampled_from(["event", "data"]))
        holder = event if target == "event" or not isinstance(event.get("data"), dict) else event["data"]
        key = draw(st.sampled_from(EVENT_KEYS if holder is event else DATA_KEYS))
        how = draw(st.sampled_from(["drop", "retype", "type", "id", "case"]))
        if how == "drop":
            holder.pop(key, None)
        elif how == "retype":
            holder[key] = draw(json_values)
        elif how == "type":
            event["eventType"] = draw(st.sampled_from(EVENT_TYPES + ["Microsoft.Resources.Resource", "microsoft.resources.resourcewritesuccess"]))
        elif how == "id":
            original = holder.get(key) if isinstance(holder.get(key), str) else event.get("subject") or ""
            holder[key] = draw(st.sampled_from([
                original + "/", original.upper(), original + "/../x", original.replace("/", "//"), original + "\n",
                original.replace("cip-", "cip-nobody-"), original + "/providers/Microsoft.Compute/snapshots/x", "", "/"]))
        else:
            if isinstance(holder.get(key), str):
                holder[key] = holder[key].swapcase()
    return event


def as_function_argument(body: dict):
    """Through the library's converter when the envelope allows it, else the constructor (any field values)."""
    try:
        return event_grid_event(body)
    except Exception:  # noqa: BLE001 - the converter's own limits; the constructor takes anything
        fields: Any = body  # whatever a hostile sender put there, None included
        return func.EventGridEvent(
            id=fields.get("id"), data=fields.get("data"), topic=fields.get("topic"), subject=fields.get("subject"),
            event_type=fields.get("eventType"), event_time=None, data_version=fields.get("dataVersion"))


class TestEventGridEntryPoint:
    def test_the_world_has_events_to_mutate(self, world):
        assert len(_samples(world)) > 10

    def test_mutated_events_never_raise_and_never_write(self, world):
        samples = _samples(world)

        @FUZZ
        @given(body=mutated_events(samples))
        def check(body):
            before = writes(world.emulator)
            world.host.call("resource_events", as_function_argument(body))
            assert writes(world.emulator) == before

        check()

    @FUZZ
    @given(body=st.dictionaries(st.sampled_from(EVENT_KEYS), json_values, max_size=7))
    def test_arbitrary_envelopes_never_raise_and_never_write(self, world, body):
        before = writes(world.emulator)
        world.host.call("resource_events", as_function_argument(body))
        assert writes(world.emulator) == before


class TestRegressions:
    """What the fuzzing found, pinned as plain examples."""

    @pytest.mark.parametrize("event_type", [[None], 7, {"a": 1}, None])
    def test_an_event_type_that_is_not_a_string_is_ignored(self, world, event_type):
        before = writes(world.emulator)
        world.host.call("resource_events", as_function_argument({"eventType": event_type, "subject": ["x"], "id": 1}))
        assert writes(world.emulator) == before
