"""The emulator's fast paths answer exactly what the plain code they replace answered.

Each shortcut exists for speed only (a 10,000-pool fleet writes 50,000 locks): an event's ids and times, a resource's
copy, a Resource Graph query's string literals, a lock count.
"""

from __future__ import annotations

import copy
import random
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

from emulator.events import timestamp_text, uuid4_text
from emulator.resourcegraph.models import _STRING, _unquote, parse
from emulator.store import ArmResource, ResourceStore


def test_uuid4_text_is_what_uuid_writes_for_a_version_4_uuid():
    draw = random.Random(7)
    for bits in [0, 1, 2, 255, (1 << 128) - 1, *range(3, 300), *(draw.getrandbits(128) for _ in range(2000))]:
        assert uuid4_text(bits) == str(uuid.UUID(int=bits, version=4))


def test_timestamp_text_is_strftime_with_seven_fraction_digits_for_every_offset():
    draw = random.Random(11)
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    for _ in range(500):
        moment = start + timedelta(microseconds=draw.randrange(10**12))
        # The same instant at another offset, and a naive one, read differently on the wall: each its own text.
        for when in (moment, moment.astimezone(timezone(timedelta(hours=2))), moment.replace(tzinfo=None)):
            assert timestamp_text(when) == when.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
            assert timestamp_text(when) == when.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")  # remembered, unchanged


def test_to_dict_is_a_deep_copy_the_caller_may_change():
    properties = {"provisioningState": "Succeeded", "n": 3, "ratio": 0.5, "on": True, "none": None,
                  "nested": {"list": [1, {"a": "b"}, [2, 3]]}, "when": datetime(2026, 1, 5, tzinfo=UTC), "pair": (1, [2])}
    resource = ArmResource("/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/images/i", "Microsoft.Compute/images",
                           "westeurope", properties, extra={"identity": {"type": "None", "ids": ["x"]}})
    body = resource.to_dict()
    assert body["properties"] == copy.deepcopy(properties)
    assert body["identity"] == {"type": "None", "ids": ["x"]}
    body["properties"]["nested"]["list"][1]["a"] = "changed"
    body["properties"]["pair"][1].append(9)
    body["identity"]["ids"].append("y")
    assert resource.properties["nested"]["list"][1] == {"a": "b"}
    assert resource.properties["pair"] == (1, [2])
    assert resource.extra["identity"]["ids"] == ["x"]


def test_query_string_literals_match_the_step_per_character_pattern_they_replace():
    plain = r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\""
    texts = ["'a', 'b'", r"'it\'s', \"q\\\"x\"", "'/subscriptions/s/resourceGroups/g/providers/x/y'", r"'a\\' , 'b'", "'open"]
    for text in texts:
        assert re.findall(_STRING, text) == re.findall(plain, text)
        assert [_unquote(m) for m in re.findall(_STRING, text)] == [re.sub(r"\\(.)", r"\1", m[1:-1]) for m in re.findall(plain, text)]
    ids = ", ".join(f"'/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/snapshots/s{i:04d}'" for i in range(1000))
    query = parse(f"Resources | where id in~ ({ids}) | project id")
    assert len(query.filters[0][1]) == 1000


def test_count_is_the_length_of_the_type_listing_through_changes():
    store = ResourceStore()
    locks = "Microsoft.Authorization/locks"
    for i in range(5):
        store.put(ArmResource(f"/subscriptions/s/resourceGroups/g/providers/Microsoft.Authorization/locks/L{i}", locks, None, {}))
    store.put(ArmResource("/subscriptions/s/resourceGroups/g/providers/microsoft.authorization/locks/l1", locks, None, {}))  # same id
    store.remove("/subscriptions/s/resourceGroups/g/providers/Microsoft.Authorization/locks/L2")
    assert store.count(locks) == store.count(locks.upper()) == len(store.of_type(locks)) == 4
    assert store.count("Microsoft.Compute/images") == 0
