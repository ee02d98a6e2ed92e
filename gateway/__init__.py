"""The event gateway: receives identity events as they happen and keeps them until a run has taken them on.

Routes (``python -m gateway serve``):
- ``POST /webhooks/akamai`` — Akamai Identity Cloud Webhooks v3 (``application/secevent+jwt``);
- ``POST /connectors/b2c/signup`` — the Azure AD B2C REST API connector (HTTP Basic);
- ``GET /healthz`` — inbox reachable, pending count.

Configuration (environment only): ``GATEWAY_INBOX_PATH``; ``AKAMAI_WEBHOOK_JWKS_URL``, ``AKAMAI_WEBHOOK_ISSUER``,
``AKAMAI_WEBHOOK_AUDIENCE``, ``GATEWAY_SET_MAX_AGE_S`` (default 90000: the sender redelivers one token for up
to a day), ``GATEWAY_CLOCK_SKEW_S`` (30), ``GATEWAY_MAX_BODY_BYTES`` (65536); ``CONNECTOR_USERNAME``,
``CONNECTOR_PASSWORD``, ``CONNECTOR_BUDGET_S`` (2), ``CONNECTOR_WAREHOUSE_LOOKUP`` (off), ``B2C_CONSENT_ATTRIBUTE``,
``B2C_CONTACT_ID_ATTRIBUTE``, the ``SALESFORCE_*`` variables and ``IDLINK_CA_BUNDLE``.
Each route is served only when its settings are present.
"""
