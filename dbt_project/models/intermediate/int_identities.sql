-- Every identity provider in one relation; the provider is part of the key.
with

b2c as (
    select * from {{ ref('stg_b2c__users') }}
),

akamai as (
    select * from {{ ref('stg_akamai__users') }}
),

final as (
    select * from b2c
    union all
    select * from akamai
)

select * from final
