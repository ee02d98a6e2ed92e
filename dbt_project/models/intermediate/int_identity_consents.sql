-- Each identity's consent per purpose (var consent_purposes): the answer, when it was given, when it expires and
-- its state at this run (an expired answer counts as none). One row per identity and purpose; a view reshaping
-- int_identities' consent columns, read once each by the consent snapshot and the exclusions.
{%- set purposes = idlink.consent_purposes() %}
with

identities as (
    select * from {{ ref('int_identities') }}
),

final as (
    {%- for purpose in purposes %}
    select
        identity_provider,
        identity_id,
        cast('{{ purpose.name }}' as {{ dbt.type_string() }}) as purpose,
        {{ purpose.name }}_consent_answer as answer,
        {{ purpose.name }}_consent_given_at as given_at,
        {{ purpose.name }}_consent_expires_at as expires_at,
        {{ idlink.consent_state(purpose.name ~ '_consent_answer', purpose.name ~ '_consent_expires_at') }} as state,
        is_deleted
    from identities
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
)

select * from final
