"""The event gateway: receives identity events as they happen and keeps them until a run has taken them on.

Routes (``python -m gateway serve``):
- ``POST /webhooks/akamai`` — Akamai Identity Cloud Webhooks v3 (``application/secevent+jwt``);
- ``POST /connectors/b2c/signup`` — the Azure AD B2C REST API connector (HTTP Basic);
- ``GET /healthz`` — inbox reachable, pending count.

Configuration: the environment, read once by ``python -m gateway`` into typed settings (``settings``; the
``GATEWAY_*``, ``AKAMAI_WEBHOOK_*``, ``CONNECTOR_*``, ``FAST_LANE_*``, ``SALESFORCE_*`` and ``AKAMAI_*`` variables
of docs/architecture.md). Each route is served only when its settings are present.
"""
