"""Route table for Function Apps (Microsoft.Web/sites): what verify and the deployment commands read."""

from __future__ import annotations

from ..router import Route
from . import responses as r
from .models import FUNCTION, SITE

_SITE = "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Web/sites/{name}"

ROUTES = [
    Route("GET", _SITE, SITE, r.get_site, emits_events=False),
    Route("POST", _SITE + "/config/appsettings/list", "Microsoft.Web/sites/config", r.list_app_settings, emits_events=False,
          rbac_action="Microsoft.Web/sites/config/list/action"),
    Route("GET", _SITE + "/functions", FUNCTION, r.list_functions, emits_events=False),
    Route("GET", _SITE + "/host/default/properties/status", "Microsoft.Web/sites/host/properties", r.get_host_status, emits_events=False),
]
