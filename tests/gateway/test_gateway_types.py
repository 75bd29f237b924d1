"""The gateway answers in typed views: no method of its protocols, nor of their SDK implementations, returns ``Any``."""

from __future__ import annotations

import inspect
import typing

import pytest

from shared.gateway import protocol
from shared.gateway.batch import SdkBatch
from shared.gateway.compute import SdkCompute
from shared.gateway.graph import SdkResourceGraph
from shared.gateway.locks import SdkLocks
from shared.gateway.monitor import SdkMonitor
from tests.fake_gateway import FakeAzure

SERVICES: list[type] = [protocol.ComputeGateway, protocol.BatchGateway, protocol.LockGateway, protocol.MonitorGateway, protocol.ResourceGraphGateway]
IMPLEMENTATIONS: list[type] = [SdkCompute, SdkBatch, SdkLocks, SdkMonitor, SdkResourceGraph]


def answers(cls: type) -> dict[str, object]:
    """The return type of every public method of ``cls``."""
    return {name: typing.get_type_hints(member)["return"] for name, member in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")}


def mentions_any(hint: object) -> bool:
    return hint is typing.Any or any(mentions_any(arg) for arg in typing.get_args(hint))


@pytest.mark.parametrize("cls", SERVICES + IMPLEMENTATIONS, ids=lambda cls: cls.__name__)
def test_no_gateway_method_answers_any(cls: type):
    found = answers(cls)
    assert found and {name: hint for name, hint in found.items() if mentions_any(hint)} == {}


@pytest.mark.parametrize(("service", "implementation"), list(zip(SERVICES, IMPLEMENTATIONS, strict=True)), ids=lambda cls: cls.__name__)
def test_each_sdk_implementation_answers_exactly_what_its_protocol_says(service: type, implementation: type):
    assert answers(implementation) == answers(service)


def test_the_unit_tests_fake_answers_every_service_alike():
    fake = answers(FakeAzure)
    assert all(fake[name] == hint for service in SERVICES for name, hint in answers(service).items())


def test_the_check_would_see_an_any():
    assert mentions_any(typing.Any) and mentions_any(list[typing.Any]) and mentions_any(typing.Optional[typing.Any])  # noqa: UP045
    assert not mentions_any(list[int])
