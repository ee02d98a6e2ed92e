-- Every CRM's contacts in one relation; the crm is part of the key. Only what linking reads: match keys, the
-- identity id a contact carries, deletion and dates; the fields as loaded stay in each CRM's staging view.
with

salesforce as (
    select
        {{ idlink.contact_link_columns() }}
    from {{ ref('stg_salesforce__contacts') }}
),

dynamics as (
    select
        {{ idlink.contact_link_columns() }}
    from {{ ref('stg_dynamics__contacts') }}
),

contacts as (
    select * from salesforce
    union all
    select * from dynamics
),

-- the identity a steward linked each contact to (the latest such decision in force; deterministic rule steward_link)
steward_links as (
    select crm, contact_id, identity_provider, identity_id
    from (
        select
            d.*,
            row_number() over (partition by crm, contact_id order by decided_at desc, decision_id desc) as recency
        from {{ ref('int_link_decisions') }} as d
        where decision = 'link'
    ) as linked
    where recency = 1
),

final as (
    select
        contacts.*,
        s.identity_provider as steward_identity_provider,
        s.identity_id as steward_identity_id
    from contacts
    left join steward_links as s on s.crm = contacts.crm and s.contact_id = contacts.contact_id
)

select * from final
