"""Settings are read in one place and fail by name; clients are built lazily and run on the emulator."""

from __future__ import annotations

import pytest

from emulator.world import AzureEmulator
from shared import settings as names
from shared.clients import AzureClients
from shared.messaging import OutgoingMessage
from shared.settings import SettingError, Settings
from tests.support import RG_ID, SUBSCRIPTION, StaticTokenCredential
from tests.support import VALID_SETTINGS as VALID


class TestSettings:
    def test_valid_settings_parse_with_defaults(self):
        settings = Settings.from_environ(VALID)
        assert settings.arm_endpoint == "https://management.azure.com"
        assert settings.ledger_table_name == "poolrequests"
        assert settings.pool_requests_queue == "pool-requests"
        assert settings.allowed_scopes[0] == RG_ID and settings.allowed_scopes[1].endswith("/batchAccounts/acct")

    @pytest.mark.parametrize("missing", sorted(VALID))
    def test_a_missing_setting_is_named(self, missing):
        environ = {k: v for k, v in VALID.items() if k != missing}
        with pytest.raises(SettingError, match=f"App setting {missing} is missing"):
            Settings.from_environ(environ)

    @pytest.mark.parametrize(
        "name, value",
        [
            (names.ALERTS_TOPIC_ENDPOINT, "alerts.eventgrid.azure.net"),
            (names.ALERTS_TOPIC_ENDPOINT, "http://alerts.eventgrid.azure.net/api/events"),
            (names.SERVICEBUS_NAMESPACE, "sb://bus.servicebus.windows.net/"),
            (names.LEDGER_TABLE_NAME, "pool-requests"),
            (names.POOL_REQUESTS_QUEUE, "pool requests"),
            (names.ALLOWED_SCOPES, "/subscriptions/not-a-guid"),
            (names.ALLOWED_SCOPES, f"{RG_ID}/providers/Microsoft.Compute/images/x"),
        ],
    )
    def test_a_malformed_setting_is_named_with_the_rule(self, name, value):
        with pytest.raises(SettingError, match=f"App setting {name} must"):
            Settings.from_environ({**VALID, name: value})

    def test_alert_and_protection_settings_default_and_parse(self):
        # GIVEN only the required settings, THEN alerts dedupe per hour and protection locks are released
        defaults = Settings.from_environ(VALID)
        assert (defaults.alert_dedup_minutes, defaults.keep_image_locks) == (60, False)
        # WHEN they are set, THEN they are read
        chosen = Settings.from_environ({**VALID, names.ALERT_DEDUP_MINUTES: "15", names.KEEP_IMAGE_LOCKS: "TRUE"})
        assert (chosen.alert_dedup_minutes, chosen.keep_image_locks) == (15, True)
        with pytest.raises(SettingError, match=f"App setting {names.KEEP_IMAGE_LOCKS} must be true or false"):
            Settings.from_environ({**VALID, names.KEEP_IMAGE_LOCKS: "yes"})
        assert not chosen.allow_legacy_managed_image_pools
        assert Settings.from_environ({**VALID, names.ALLOW_LEGACY_MANAGED_IMAGE_POOLS: "true"}).allow_legacy_managed_image_pools
        with pytest.raises(SettingError, match=f"App setting {names.ALERT_DEDUP_MINUTES} must"):
            Settings.from_environ({**VALID, names.ALERT_DEDUP_MINUTES: "0"})

    def test_every_setting_name_is_listed_once(self):
        declared = {value for key, value in vars(names).items() if key.isupper() and isinstance(value, str) and not key.startswith("DEFAULT_") and key != "SERVICEBUS_CONNECTION"}
        assert declared == names.ALL_SETTING_NAMES


class TestClientFactory:
    def test_clients_are_built_once_per_subscription_and_talk_to_the_emulator(self):
        emulator = AzureEmulator()
        vm_id = f"{RG_ID}/providers/Microsoft.Compute/virtualMachines/vm1"
        emulator.compute.add_virtual_machine(vm_id)
        clients = AzureClients(Settings.from_environ(VALID), credential=StaticTokenCredential(), transport=emulator.transport())
        assert clients.compute(SUBSCRIPTION) is clients.compute(SUBSCRIPTION.upper())
        assert clients.compute(SUBSCRIPTION).virtual_machines.get("rg-imaging", "vm1").id == vm_id
        assert emulator.calls["GET Microsoft.Compute/virtualMachines"] == 1

    def test_alerts_publisher_sends_cloud_events_to_the_emulated_topic(self):
        from azure.core.messaging import CloudEvent

        emulator = AzureEmulator()
        clients = AzureClients(Settings.from_environ(VALID), credential=StaticTokenCredential(), transport=emulator.transport())
        clients.alerts_publisher().send([CloudEvent(source="/custom-image-pools", type="CustomImagePool.Test", data={"pools": []}, subject="/x")])
        [received] = emulator.topic.received
        assert received["type"] == "CustomImagePool.Test" and received["specversion"] == "1.0" and received["data"] == {"pools": []}

    def test_a_publish_failure_is_an_error_after_the_sdk_retries(self):
        from azure.core.exceptions import HttpResponseError
        from azure.core.messaging import CloudEvent

        from emulator.faults import FaultKind, FaultRule

        emulator = AzureEmulator()
        emulator.faults.add(FaultRule("POST Microsoft.EventGrid/topics", FaultKind.UNAVAILABLE))
        clients = AzureClients(Settings.from_environ(VALID), credential=StaticTokenCredential(), transport=emulator.transport(), retry_total=2)
        with pytest.raises(HttpResponseError):
            clients.alerts_publisher().send([CloudEvent(source="/s", type="t", data={})])
        assert emulator.calls["POST Microsoft.EventGrid/topics"] == 3 and emulator.topic.received == []

    def test_loopback_ledger_endpoint_uses_the_azurite_account(self):
        settings = Settings.from_environ({**VALID, names.LEDGER_TABLE_ENDPOINT: "http://127.0.0.1:10002/devstoreaccount1"})
        table = AzureClients(settings).ledger_table()
        assert table.table_name == "poolrequests" and table.account_name == "devstoreaccount1"


class TestEmulatedServiceBus:
    def test_scheduled_messages_wait_for_their_time_and_failures_are_redelivered_then_dead_lettered(self):
        emulator = AzureEmulator()
        bus = emulator.servicebus
        bus.queue("checks").max_delivery_count = 3
        later = emulator.now().replace(microsecond=0)
        from datetime import timedelta

        bus.send("checks", OutgoingMessage('{"pool": "p"}', message_id="m1", reply_to="replies", scheduled_enqueue_time=later + timedelta(minutes=5)))
        assert bus.receive_due("checks") is None
        emulator.advance(300)
        attempts = []

        def failing(message):
            attempts.append((message.message_id, message.delivery_count, message.message.reply_to))
            raise RuntimeError("transient")

        bus.deliver_due("checks", failing)
        assert attempts == [("m1", 1, "replies"), ("m1", 2, "replies"), ("m1", 3, "replies")]
        [dead] = bus.queue("checks").dead_letters
        assert dead.dead_letter_reason.startswith("MaxDeliveryCountExceeded: RuntimeError: transient")
