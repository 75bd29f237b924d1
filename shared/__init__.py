"""The Function App's code below its triggers, one package per capability.

Imports run one way, top to bottom (``tests/foundation/test_layering.py`` holds
the list and fails on a cycle or an upward import):

- ``intake``, ``guard``: what the triggers call (pool requests; resizing pools).
- ``pipeline``: the request's stages, event routing, stuck-request reconciliation.
- ``protection``: image lineage, locks and usage records, the protection alerts.
- ``dependencies``: what a handler needs, built once per worker.
- ``alerts``, ``clients``, ``settings``: the alert catalogue and policy; the Azure
  SDK client factory; every app setting.
- ``store``: the request ledger and the small records beside it.
- ``model``: the request's wire format and the resources it plans.
- ``arm``, ``messaging``, ``naming``, ``errors``: ARM ids, calls, events and
  pools; Service Bus messages; every ``cip-`` name; the two exception roots.
"""
