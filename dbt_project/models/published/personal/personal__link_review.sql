-- The review queue side by side: each contested pair with both records' names, emails, phones and places.
with

conflicts as (
    select * from {{ ref('link_conflicts') }}
),

identities as (
    select * from {{ ref('personal__identities') }}
),

contacts as (
    select * from {{ ref('personal__contacts') }}
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
        i.given_name as identity_given_name,
        i.family_name as identity_family_name,
        i.email as identity_email,
        i.phone_e164 as identity_phone_e164,
        i.street_address as identity_street_address,
        i.postal_code as identity_postal_code,
        i.city as identity_city,
        k.given_name as contact_given_name,
        k.family_name as contact_family_name,
        k.email as contact_email,
        k.phone_e164 as contact_phone_e164,
        k.street_address as contact_street_address,
        k.postal_code as contact_postal_code,
        k.city as contact_city
    from conflicts as c
    left join identities as i on i.identity_provider = c.identity_provider and i.identity_id = c.identity_id
    left join contacts as k on k.crm = c.crm and k.contact_id = c.contact_id
)

select * from final
