-- Every identity's consent per purpose over time: each answer, when it was given, its expiry and its state, with
-- the span each version was current. Keys and states only.
with

versions as (
    select * from {{ ref('identity_consents_snapshot') }}
),

final as (
    select
        identity_provider,
        identity_id,
        purpose,
        answer,
        given_at,
        expires_at,
        state,
        dbt_valid_from as valid_from,
        dbt_valid_to as valid_to
    from versions
)

select * from final
