{#- Staging of one identity provider's raw users table (raw_<provider>.users). Every provider lands the same
    identity columns, so one definition serves them all; each stg_<provider>__users model calls it. -#}
{% macro stg_identity_users(provider) %}
with

source as (
    {{ idlink.typed_columns_from(source('raw_' ~ provider, 'users'), idlink.identity_raw_columns()) }}
),

renamed as (
    select
        '{{ provider }}' as identity_provider,
        id as identity_id,
        display_name,
        given_name,
        surname as family_name,
        -- the sign-in (verified) address wins over the profile mail attribute
        coalesce({{ idlink.blank_to_null('sign_in_email') }}, {{ idlink.blank_to_null('mail') }}) as email_raw,
        email_valid as email_valid_raw,
        phone_e164 as phone_raw,
        street_address,
        city,
        postal_code,
        country_code as country_code_raw,
        {{ idlink.consent_state('custom_attributes', provider) }} as consent_state,
        {{ idlink.blank_to_null(idlink.json_text_field('custom_attributes', var('contact_id_attribute'))) }} as carried_contact_id,
        coalesce(account_enabled, true) as account_enabled,
        coalesce(is_deleted, false) as is_deleted,
        coalesce(quality_flags, '') as quality_flags,
        created_date_time as created_at,
        ingested_at
    from source
    where id is not null
),

nicknames as (
    {{ idlink.nickname_variants() }}
),

keyed as (
    select
        renamed.*,
{{ idlink.person_match_keys('renamed') }}
    from renamed
),

final as (
    select
        keyed.identity_provider,
        keyed.identity_id,
        keyed.display_name,
        keyed.given_name,
        keyed.family_name,
        keyed.email,
        keyed.email_valid,
        keyed.given_name_key,
        keyed.family_name_key,
{{ idlink.person_derived_keys('keyed') }},
        keyed.phone_e164,
        keyed.street_address,
        keyed.street_key,
        keyed.city,
        keyed.city_key,
        keyed.postal_code,
        keyed.postal_code_key,
        keyed.country_code,
        keyed.consent_state,
        keyed.carried_contact_id,
        keyed.account_enabled,
        keyed.is_deleted,
        keyed.quality_flags,
        keyed.created_at,
        keyed.ingested_at
    from keyed
    left join nicknames as nick
        on nick.name = keyed.given_name_key
)

select * from final
{% endmacro %}
