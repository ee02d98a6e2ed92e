"""Ingestion: dlt sources that load identities and CRM contacts into the warehouse (``ingestion.b2c``,
``ingestion.salesforce``, ``ingestion.akamai``; runs without Dagster in ``ingestion.pipeline``).

The names below are the stage's public interface for the other stages (the event gateway): reading one record the
way a load would, without knowing how pages are built or what is quarantined.
"""

from ingestion.akamai import CONSENT_KEY, CONTACT_ID_KEY, AkamaiIdentityReader, UnrepresentableRecord

__all__ = ["CONSENT_KEY", "CONTACT_ID_KEY", "AkamaiIdentityReader", "UnrepresentableRecord"]
