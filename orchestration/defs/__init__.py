"""Dagster definitions of idlink, one module per stage, loaded by `orchestration.definitions` (and by `dg`):

- `ingestion.py`: dlt loads of B2C users and Salesforce contacts (`raw_b2c/users`, `raw_salesforce/contact`);
- `akamai.py`: the Akamai load and the push of CRM contact ids onto Akamai users;
- `linking.py`: every dbt model, seed and snapshot (group `linking`), dbt tests as asset checks;
- `reverse_etl.py`: pushes to Salesforce and B2C with their checks;
- `jobs.py`: `ingest_and_link` and `full_sync`;
- `realtime.py`: sensors (inbox, Salesforce changes, run failures) and schedules;
- `resources.py`: the resources, bound from the environment.
"""
