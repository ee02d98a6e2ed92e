{#- Staging of one identity provider's raw users table (raw_<provider>.users). Every provider lands the same
    identity columns, so one definition serves them all; each stg_<provider>__users model calls it. -#}
{% macro stg_identity_users(provider) %}
{%- set purposes = idlink.consent_purposes() -%}
{%- set consent_attributes = idlink.consent_attribute_names(provider) -%}
{%- if 'crm_sync' not in purposes | map(attribute='name') | list -%}
    {{ exceptions.raise_compiler_error("var consent_purposes needs the purpose crm_sync: it gates every link and push") }}
{%- endif %}
with

source as {{ idlink.inlined_cte() }} (
    {{ idlink.typed_columns_from(source('raw_' ~ provider, 'users'), idlink.identity_raw_columns()) }}
),

renamed as {{ idlink.inlined_cte() }} (
    select
        '{{ provider }}' as identity_provider,
        id as identity_id,
        {{ idlink.bounded_text('display_name') }} as display_name,
        {{ idlink.bounded_text('given_name') }} as given_name,
        {{ idlink.bounded_text('surname') }} as family_name,
        -- the sign-in (verified) address wins over the profile mail attribute
        coalesce({{ idlink.blank_to_null('sign_in_email') }}, {{ idlink.blank_to_null('mail') }}) as email_raw,
        email_valid as email_valid_raw,
        phone_e164 as phone_raw,
        {{ idlink.bounded_text('street_address') }} as street_address,
        {{ idlink.bounded_text('city') }} as city,
        {{ idlink.bounded_text('postal_code') }} as postal_code,
        country_code as country_code_raw,
        -- one JSON parse per row for every attribute: each purpose's answer, time given and expiry, then the
        -- carried contact id
        {{ idlink.json_text_fields('custom_attributes', consent_attributes + [var('contact_id_attribute')]) }} as attribute_values,
        coalesce(account_enabled, true) as account_enabled,
        coalesce(is_deleted, false) as is_deleted,
        coalesce(quality_flags, '') as quality_flags,
        cast(created_date_time as {{ idlink.type_timestamp_tz() }}) as created_at,
        -- the application the identity registered through: which field-mapping entry applies to it
        {{ idlink.blank_to_null('client_id') }} as client_id,
        email_verified,
        last_login_at,
        last_updated_at,
        ingested_at
    from source
    where id is not null
        and id not in ({{ idlink.erased_ids(provider) }})  -- an erased person stays out whatever raw still holds
),

name_keys as {{ idlink.materialized_cte() }} (
    {{ idlink.name_keys('renamed') }}
),

keyed as (
    select
        renamed.*,
        {%- for purpose in purposes %}
        {%- set at = loop.index0 * 3 %}
        {{ idlink.consent_answer('renamed.attribute_values[' ~ (at + 1) ~ ']') }} as {{ purpose.name }}_consent_answer,
        {{ idlink.text_timestamp('renamed.attribute_values[' ~ (at + 2) ~ ']') }} as {{ purpose.name }}_consent_given_at,
        {{ idlink.text_timestamp('renamed.attribute_values[' ~ (at + 3) ~ ']') }} as {{ purpose.name }}_consent_expires_at,
        {%- endfor %}
        {{ idlink.blank_to_null('renamed.attribute_values[' ~ (consent_attributes | length + 1) ~ ']') }} as carried_contact_id,
{{ idlink.person_match_keys('renamed') }}
    from renamed
    {{ idlink.name_key_joins('renamed') }}
),

final as (
    select
        keyed.identity_provider,
        keyed.identity_id,
        keyed.display_name,
{{ idlink.person_columns('keyed') }},
        -- the crm_sync purpose's state at this run: what linking and every push read
        {{ idlink.consent_state('keyed.crm_sync_consent_answer', 'keyed.crm_sync_consent_expires_at') }} as consent_state,
        {%- for purpose in purposes %}
        keyed.{{ purpose.name }}_consent_answer,
        keyed.{{ purpose.name }}_consent_given_at,
        keyed.{{ purpose.name }}_consent_expires_at,
        {%- endfor %}
        keyed.carried_contact_id,
        keyed.account_enabled,
        keyed.is_deleted,
        keyed.quality_flags,
        keyed.created_at,
        keyed.client_id,
        keyed.email_verified,
        keyed.last_login_at,
        keyed.last_updated_at,
        keyed.ingested_at
    from keyed
)

select * from final
{% endmacro %}
