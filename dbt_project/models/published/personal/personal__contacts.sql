-- Every CRM contact with its personal fields in full, for data stewards.
with

final as (
    {%- for crm in ['salesforce', 'dynamics'] %}
    select
        crm, contact_id, account_id, given_name, family_name, email, email_valid, phone_e164, street_address,
        city, postal_code, country_code, external_user_id, is_deleted, quality_flags, created_at,
        last_modified_at, ingested_at
    from {{ ref('stg_' ~ crm ~ '__contacts') }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
)

select * from final
