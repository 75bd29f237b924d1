"""Microsoft.Web: a Function App as ARM shows it after a deployment.

What ``python -m cli verify`` and the deployment commands read (azure-mgmt-web 11.0.1, api-version
2025-05-01; the paths are those of the REST spec's WebApps operations the SDK is generated from):

- ``GET .../sites/{name}`` (WebApps_Get): the site.
- ``POST .../sites/{name}/config/appsettings/list`` (WebApps_ListApplicationSettings): the app settings
  as a StringDictionary (``properties``: name -> value); the RBAC action is
  ``Microsoft.Web/sites/config/list/action`` ("Azure resource provider operations", Microsoft.Web).
- ``GET .../sites/{name}/functions`` (WebApps_ListFunctions): one FunctionEnvelope per function the
  host indexed, named ``<site>/<function>``.
- ``GET .../sites/{name}/host/default/properties/status``: the Functions host's status, which the SDK
  has no operation for; the Azure portal reads it this way (Azure/azure-functions-ux
  ``client-react/src/ApiHelpers/FunctionsService.ts`` ``getHostStatus``) with ``properties.state`` one of
  Default, Initialized, Running, Error, Offline and ``properties.errors`` (``client-react/src/models/
  functions/host-status.ts``).

Which functions a deployed package indexes is not the emulator's business: a test runs the real indexing
on the package and tells the emulator the names (:meth:`WebBackend.add_function_app`).
"""

from __future__ import annotations

from typing import Any

from ..errors import ResourceNotFound
from ..store import ArmResource

SITE = "Microsoft.Web/sites"
FUNCTION = "Microsoft.Web/sites/functions"
HOST_STATES = ("Default", "Initialized", "Running", "Error", "Offline")


class WebBackend:
    """Function Apps in the emulator's store, with their settings, indexed functions and host status."""

    def __init__(self, emulator: Any) -> None:
        self._emulator = emulator
        self._settings: dict[str, dict[str, str]] = {}
        self._host: dict[str, dict[str, Any]] = {}

    def add_function_app(self, site_id: str, *, app_settings: dict[str, str], functions: list[str], location: str = "westeurope",
                         host_state: str = "Running", host_errors: list[str] | None = None) -> ArmResource:
        """Seed a deployed Function App: its settings, the functions its host indexed and the host's state."""
        if host_state not in HOST_STATES:
            raise ValueError(f"host_state must be one of {HOST_STATES}")
        site = self._emulator.store.put(ArmResource(site_id, SITE, location, {"state": "Running", "kind": "functionapp,linux"}))
        self._settings[site_id.lower()] = dict(app_settings)
        for existing in self._emulator.store.of_type(FUNCTION, under=site_id):
            self._emulator.store.remove(existing.id)
        for name in functions:
            self._emulator.store.put(ArmResource(f"{site_id}/functions/{name}", FUNCTION, None, {"name": name, "isDisabled": False, "language": "python"}))
        self._host[site_id.lower()] = {"state": host_state, "version": "4.1040.300.25317", "errors": list(host_errors or [])}
        return site

    def site(self, site_id: str) -> ArmResource:
        found = self._emulator.store.find(site_id)
        if found is None or found.type != SITE:
            raise ResourceNotFound(f"The Resource '{SITE}/{site_id.rstrip('/').rsplit('/', 1)[-1]}' was not found.")
        return found

    def app_settings(self, site_id: str) -> dict[str, Any]:
        self.site(site_id)
        return {"id": f"{site_id}/config/appsettings", "name": "appsettings", "type": "Microsoft.Web/sites/config",
                "properties": dict(self._settings.get(site_id.lower(), {}))}

    def functions(self, site_id: str) -> list[dict[str, Any]]:
        site = self.site(site_id)
        return [{**f.to_dict(), "name": f"{site.name}/{f.name}"} for f in self._emulator.store.of_type(FUNCTION, under=site_id)]

    def host_status(self, site_id: str) -> dict[str, Any]:
        self.site(site_id)
        status = self._host.get(site_id.lower(), {"state": "Default", "version": "", "errors": []})
        return {"id": f"{site_id}/host/default/properties/status", "properties": {"id": site_id.rsplit("/", 1)[-1], **status}}
