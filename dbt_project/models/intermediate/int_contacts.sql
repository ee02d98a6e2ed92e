-- Every CRM's contacts in one relation; the crm is part of the key.
with

salesforce as (
    select * from {{ ref('stg_salesforce__contacts') }}
),

final as (
    select * from salesforce
)

select * from final
