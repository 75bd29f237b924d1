"""The Function App's code below its triggers, one package per capability.

Imports run one way, top to bottom (``tests/foundation/test_layering.py`` holds
the list and fails on a cycle or an upward import):

- ``bootstrap``: the composition root; what the triggers call, built once per worker.
- ``intake``, ``guard``: pool requests; keeping pools resizing towards their targets.
- ``pipeline``: the request's stages, event routing, stuck-request reconciliation.
- ``protection``: image lineage, locks and usage records, the protection alerts and audit.
- ``eventfacts``: what ARM was found to raise as events, and the probe's own events.
- ``gateway``: the only code that calls the Azure SDK; typed views in and out.
- ``alerts``, ``clients``, ``settings``: the alert catalogue and policy; the Azure
  SDK client factory; every app setting.
- ``store``: the request ledger, a request's progress, and the small records beside it.
- ``model``: the request's wire format and the resources it plans.
- ``arm``, ``messaging``, ``naming``, ``errors``: ARM ids, events and typed views
  of resources; Service Bus messages; every ``cip-`` name; the two exception roots.
"""
