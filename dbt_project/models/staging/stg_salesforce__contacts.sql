{%- set carried = idlink.carried_purposes() %}
{%- set read = carried | selectattr('crm_source_field.salesforce', 'defined') | list %}
with

source as {{ idlink.inlined_cte() }} (
    {{ idlink.typed_columns_from(source('raw_salesforce', 'contact'), idlink.contact_raw_columns()) }}
),

renamed as {{ idlink.inlined_cte() }} (
    select
        'salesforce' as crm,
        id as contact_id,
        account_id,
        {{ idlink.bounded_text('first_name') }} as given_name,
        {{ idlink.bounded_text('last_name') }} as family_name,
        email as email_raw,
        email_valid as email_valid_raw,
        phone_e164 as phone_raw,
        {{ idlink.bounded_text('mailing_street') }} as street_address,
        {{ idlink.bounded_text('mailing_city') }} as city,
        {{ idlink.bounded_text('mailing_postal_code') }} as postal_code,
        country_code as country_code_raw,
        {{ idlink.blank_to_null('external_user_id') }} as external_user_id,
        {{ idlink.blank_to_null('master_record_id') }} as master_record_id,
        {%- if read %}
        -- what the contact holds now for each purpose carried to the CRM (a Contact field of SALESFORCE_CONTACT_FIELDS)
        {{ idlink.json_text_fields('extra_fields', read | map(attribute='crm_source_field.salesforce') | list) }} as carried_values,
        {%- endif %}
        coalesce(is_deleted, false) as is_deleted,
        not coalesce(is_deleted, false) as record_exists,
        coalesce(quality_flags, '') as quality_flags,
        created_date as created_at,
        coalesce(last_modified_date, created_date) as last_modified_at,
        ingested_at
    from source
    where id is not null
        and id not in ({{ idlink.erased_ids('salesforce') }})  -- an erased person's contact stays out
),

{% call idlink.stg_crm_contacts_keyed('renamed') %}
        {%- for purpose in carried %}
        {%- if purpose in read %}
        case lower(keyed.carried_values[{{ read.index(purpose) + 1 }}]) when 'true' then true when 'false' then false end
            as {{ purpose.name }}_opt_out,
        {%- else %}
        cast(null as boolean) as {{ purpose.name }}_opt_out,
        {%- endif %}
        {%- endfor %}
{% endcall %}
