with

source as {{ idlink.inlined_cte() }} (
    {{ idlink.typed_columns_from(source('raw_dynamics', 'contact'), idlink.dynamics_contact_raw_columns()) }}
),

renamed as {{ idlink.inlined_cte() }} (
    select
        'dynamics' as crm,
        id as contact_id,
        account_id,
        {{ idlink.bounded_text('first_name') }} as given_name,
        {{ idlink.bounded_text('last_name') }} as family_name,
        email as email_raw,
        email_valid as email_valid_raw,
        phone_e164 as phone_raw,
        {{ idlink.bounded_text('street') }} as street_address,
        {{ idlink.bounded_text('city') }} as city,
        {{ idlink.bounded_text('postal_code') }} as postal_code,
        country_code as country_code_raw,
        {{ idlink.blank_to_null('external_user_id') }} as external_user_id,
        {{ idlink.blank_to_null('master_record_id') }} as master_record_id,
        -- removed: deleted (a change-tracking tombstone), or merged into another contact, which Dataverse does by
        -- deactivating the subordinate and pointing masterid at the survivor (int_contact_removals follows it)
        coalesce(is_deleted, false) or (master_record_id is not null and not coalesce(is_active, true)) as is_deleted,
        not coalesce(is_deleted, false) as record_exists,
        coalesce(quality_flags, '') as quality_flags,
        created_on as created_at,
        coalesce(modified_on, created_on) as last_modified_at,
        ingested_at
    from source
    where id is not null
),

{% call idlink.stg_crm_contacts_keyed('renamed') %}
        {%- for purpose in idlink.carried_purposes() %}
        -- no Dataverse field carries consent yet (var consent_purposes, crm_source_field): unknown
        cast(null as boolean) as {{ purpose.name }}_opt_out,
        {%- endfor %}
{% endcall %}
