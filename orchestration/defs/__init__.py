"""Dagster definitions of idlink, one module per stage, loaded by `orchestration.definitions` (and by `dg`):

- `ingestion.py`: dlt loads of B2C users and Salesforce contacts (`raw_b2c_users`, `raw_salesforce_contact`);
- `akamai.py`: the Akamai load and the push of CRM contact ids onto Akamai users;
- `scim.py`: the load of a SCIM 2.0 directory's users (`raw_scim_users`);
- `dynamics.py`: the Dynamics 365 / Dataverse load (`raw_dynamics_contact`) and push;
- `linking.py`: every dbt model, seed and snapshot (group `linking`), dbt tests as asset checks;
- `match_model.py`: training the match model (group `match_model`), its job `train_match_model` and weekly schedule;
- `privacy.py`: erasure requests applied before the dbt build, the warehouse rewritten after a run that erased
  someone;
- `publishing.py`: the databases analysts, stewards and compliance read, published after every linking run;
- `reverse_etl.py`: pushes to Salesforce and B2C with their checks;
- `jobs.py`: `ingest_and_link` and `full_sync`;
- `realtime.py`: sensors (inbox, Salesforce changes, run failures) and schedules;
- `resources.py`: the resources, bound from the environment.
"""
