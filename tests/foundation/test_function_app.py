"""The Function App indexes cheaply: no heavy SDK module at import, every function listed."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support import PROJECT_ROOT

HEAVY_PREFIXES = ("azure.mgmt", "azure.servicebus", "azure.eventgrid", "azure.identity", "azure.data.tables")


def test_importing_function_app_loads_no_heavy_sdk_module():
    # A fresh interpreter: this test process has long since imported the SDKs.
    probe = "import json, sys, function_app; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_ROOT, check=True, capture_output=True, text=True).stdout)
    heavy = [name for name in loaded if name.startswith(HEAVY_PREFIXES)]
    assert heavy == []


def test_function_app_indexes_every_function_with_its_trigger_and_settings():
    import function_app
    from rehearsal.host import indexed_functions

    # indexed_functions calls app.get_functions() once per app and keeps the result.
    indexed = {
        name: {key: value for key, value in binding.items() if key in ("type", "queueName", "connection", "schedule", "useMonitor")}
        for name, (_, _, binding) in indexed_functions(function_app.app).items()
    }
    assert indexed == {
        "pool_requests": {"type": "serviceBusTrigger", "queueName": "%POOL_REQUESTS_QUEUE%", "connection": "SERVICEBUS"},
        "resource_events": {"type": "eventGridTrigger"},
        "pool_checks": {"type": "serviceBusTrigger", "queueName": "%POOL_CHECKS_QUEUE%", "connection": "SERVICEBUS"},
        "pool_guard_sweep": {"type": "timerTrigger", "schedule": "%GUARD_SCHEDULE%", "useMonitor": True},
    }
