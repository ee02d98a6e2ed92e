-- Every erasure: whose (keys only), who asked, when it was requested, applied and removed from disk, and what
-- the CRM policy did to each of the person's contacts (the writes themselves are in writes, rule erasure:...).
with

erasures as (
    {{ idlink.typed_columns_from(source('privacy', 'erasures'), {
        'identity_provider': dbt.type_string(), 'identity_id': dbt.type_string(),
        'requested_by': dbt.type_string(), 'requested_at': dbt.type_timestamp(),
        'erased_at': dbt.type_timestamp(), 'crm_policy': dbt.type_string(), 'compacted_at': dbt.type_timestamp()}) }}
),

actions as (
    {{ idlink.typed_columns_from(source('privacy', 'crm_erasure_actions'), {
        'crm': dbt.type_string(), 'contact_id': dbt.type_string(), 'action': dbt.type_string(),
        'identity_provider': dbt.type_string(), 'identity_id': dbt.type_string(),
        'erased_at': dbt.type_timestamp()}) }}
),

final as (
    select
        e.identity_provider,
        e.identity_id,
        e.requested_by,
        e.requested_at,
        e.erased_at,
        e.compacted_at as removed_from_disk_at,
        e.crm_policy,
        a.crm,
        a.contact_id
    from erasures as e
    left join actions as a on a.identity_provider = e.identity_provider and a.identity_id = e.identity_id
)

select * from final
