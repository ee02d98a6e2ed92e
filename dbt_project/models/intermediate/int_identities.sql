-- Every identity provider in one relation; the provider is part of the key. Only what linking and the marts
-- read: match keys, consent, carried contact id, deletion, and the profile fields a new contact is created
-- from; everything else as loaded stays in each provider's staging view.
with

b2c as (
    select
        {{ idlink.identity_link_columns() }}
    from {{ ref('stg_b2c__users') }}
),

akamai as (
    select
        {{ idlink.identity_link_columns() }}
    from {{ ref('stg_akamai__users') }}
),

scim as (
    select
        {{ idlink.identity_link_columns() }}
    from {{ ref('stg_scim__users') }}
),

final as (
    select * from b2c
    union all
    select * from akamai
    union all
    select * from scim
)

select * from final
