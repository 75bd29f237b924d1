"""Parsed ARM ids are kept per process (a sweep meets the same ids every five minutes): what is kept must answer
exactly as a fresh parse would, refusals included."""

import dataclasses

import pytest

from shared.arm.ids import BATCH_POOL, IMAGE, ArmIdError, parse_arm_id, try_parse

POOL = "/subscriptions/8d3a1f52-6a3c-4c8e-9f0b-2f5c1c0a7e11/resourceGroups/rg/providers/Microsoft.Batch/batchAccounts/acct/pools/p1"


def test_given_an_id_parsed_twice_when_compared_then_the_answers_are_equal_and_cannot_be_changed():
    first, second = parse_arm_id(POOL, BATCH_POOL), parse_arm_id(POOL, BATCH_POOL)

    assert first == second and first.id == POOL and first.key() == POOL.lower()
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.names = ("acct", "other")  # type: ignore[misc]


def test_given_a_refused_id_when_parsed_again_then_it_is_refused_again_with_the_same_reason():
    smuggled = POOL + "/providers/Microsoft.Compute/images/x"
    reasons = []
    for _ in range(2):
        with pytest.raises(ArmIdError) as refused:
            parse_arm_id(smuggled, BATCH_POOL)
        reasons.append(str(refused.value))

    assert reasons[0] == reasons[1]
    assert reasons[0].startswith(f"is not a {BATCH_POOL} resource id")
    assert try_parse(smuggled, BATCH_POOL) is None


def test_given_the_same_id_when_parsed_as_another_type_then_the_type_decides():
    assert try_parse(POOL, IMAGE) is None
    with pytest.raises(ArmIdError, match="Microsoft.Compute/images"):
        parse_arm_id(POOL, IMAGE)


def test_given_a_value_that_is_not_text_when_parsed_then_it_is_refused_not_kept():
    with pytest.raises(ArmIdError):
        parse_arm_id({"id": POOL}, BATCH_POOL)
