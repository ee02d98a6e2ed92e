-- Every identity with its personal fields in full, for data stewards resolving reviews and requests.
with

final as (
    {%- for provider in ['b2c', 'akamai', 'scim'] %}
    select
        identity_provider, identity_id, display_name, given_name, family_name, email, email_valid, phone_e164,
        street_address, city, postal_code, country_code, consent_state, carried_contact_id, account_enabled,
        is_deleted, quality_flags, created_at, ingested_at
    from {{ ref('stg_' ~ provider ~ '__users') }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
)

select * from final
