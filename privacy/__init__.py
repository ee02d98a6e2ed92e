"""Privacy: a person's data leaves when it must (erasure), and nothing is kept longer than configured (retention).

* ``python -m privacy erase --provider b2c --identity-id <id>`` records an erasure request in the inbox; the next
  run applies it (``apply_erasures`` before the dbt build, ``compact_warehouse`` after it) and the Salesforce
  push applies the CRM policy (``ERASURE_CRM_POLICY``).
* An identity its provider deleted is erased the same way when ``IDLINK_ERASE_DELETED`` is on.
* ``purge_expired`` (the daily ``retention_purge`` job) removes what outlived its ``RETENTION_*_DAYS``.

Imports: ``settings`` and ``inbox`` only.
"""

from privacy.erasure import (
    CrmPolicy,
    ErasureResult,
    apply_erasures,
    compact_warehouse,
    erased_record_ids,
)
from privacy.retention import PurgeResult, purge_expired
from privacy.tables import raw_tables

__all__ = [
    "CrmPolicy",
    "ErasureResult",
    "PurgeResult",
    "apply_erasures",
    "compact_warehouse",
    "erased_record_ids",
    "purge_expired",
    "raw_tables",
]
