"""The one wall between the business code and the Azure SDK.

:mod:`.protocol` says what the capabilities may ask of each Azure service (compute, Batch, locks, the
Activity Log, Resource Graph) in typed ids and views (:mod:`shared.arm`); :mod:`.sdk` answers it with the
``azure-mgmt-*`` clients, one module per service; :mod:`.failures` sorts every failure into the project's
two exception roots. Nothing else in the Function App calls an SDK operation or reads an SDK model.
"""
