-- The review queue with both sides' emails masked for reading (j***@example.com) and keyed for joining.
with

conflicts as (
    select * from {{ ref('link_conflicts') }}
),

identities as (
    select identity_provider, identity_id, email from {{ ref('int_identities') }}
),

contacts as (
    select crm, contact_id, email from {{ ref('int_contacts') }}
),

final as (
    select
        c.identity_provider,
        c.identity_id,
        c.crm,
        c.contact_id,
        c.match_rule,
        c.match_confidence,
        c.reason,
        c.detected_at,
        {{ idlink.masked_email('i.email') }} as identity_email_masked,
        {{ idlink.masked_email('k.email') }} as contact_email_masked,
        {{ idlink.keyed_hash('i.email') }} as identity_email_key,
        {{ idlink.keyed_hash('k.email') }} as contact_email_key
    from conflicts as c
    left join identities as i on i.identity_provider = c.identity_provider and i.identity_id = c.identity_id
    left join contacts as k on k.crm = c.crm and k.contact_id = c.contact_id
)

select * from final
