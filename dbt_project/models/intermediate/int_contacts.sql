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

final as (
    select * from salesforce
    union all
    select * from dynamics
)

select * from final
