-- Every version of every link (from the snapshot): when and why a link changed. Keys only.
with

versions as (
    select * from {{ ref('identity_contact_links_snapshot') }}
),

final as (
    select
        identity_provider,
        identity_id,
        crm,
        contact_id,
        match_rule,
        match_confidence,
        status,
        consent_state,
        dbt_valid_from as valid_from,
        dbt_valid_to as valid_to
    from versions
)

select * from final
