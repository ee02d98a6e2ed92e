{#- The part of a CRM's contact staging every CRM shares: the match keys of a `renamed` relation that holds the
    contact columns under their common names (crm, contact_id, given_name, family_name, email_raw, ...,
    master_record_id, is_deleted (removed from linking: deleted or merged away), record_exists (the CRM still
    holds the record: Dataverse keeps a merged-away contact, deactivated), created_at, last_modified_at). Each
    stg_<crm>__contacts model reads and renames its raw table itself (what differs per CRM stays visible there)
    and ends with this, passing the columns only it has (each purpose's opt-out the contact carries) as the
    call's body. -#}
{% macro stg_crm_contacts_keyed(renamed) %}
name_keys as {{ idlink.materialized_cte() }} (
    {{ idlink.name_keys(renamed) }}
),

keyed as (
    select
        {{ renamed }}.*,
{{ idlink.person_match_keys(renamed) }}
    from {{ renamed }}
    {{ idlink.name_key_joins(renamed) }}
),

final as (
    select
        keyed.crm,
        keyed.contact_id,
        keyed.account_id,
{{ idlink.person_columns('keyed') }},
        keyed.external_user_id,
        keyed.master_record_id,
        {{- caller() }}
        keyed.is_deleted,
        keyed.record_exists,
        keyed.quality_flags,
        keyed.created_at,
        keyed.last_modified_at,
        keyed.ingested_at
    from keyed
)

select * from final
{% endmacro %}
