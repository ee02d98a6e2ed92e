-- Who a purpose excluded, and from what. crm_sync not granted keeps an identity out of linking, contact creation
-- and every push; any other purpose not granted matters for identities that reach the CRM (crm_sync granted):
-- one carried to the CRM (crm_field in var consent_purposes) is sent there as an opt-out.
{%- set crm_fields = {} %}
{%- for purpose in idlink.consent_purposes() if purpose.get('crm_field') %}
    {%- do crm_fields.update({purpose.name: purpose.crm_field}) %}
{%- endfor %}
with

consents as (
    select * from {{ ref('int_identity_consents') }}
    where not is_deleted
),

crm_sync as (
    select identity_provider, identity_id, state from consents
    where purpose = 'crm_sync'
),

excluded as (
    select c.*
    from consents as c
    inner join crm_sync as s on s.identity_provider = c.identity_provider and s.identity_id = c.identity_id
    where c.state <> 'granted' and (c.purpose = 'crm_sync' or s.state = 'granted')
),

final as (
    select
        cast(identity_provider as {{ dbt.type_string() }}) as identity_provider,
        cast(identity_id as {{ dbt.type_string() }}) as identity_id,
        cast(purpose as {{ dbt.type_string() }}) as purpose,
        cast(state as {{ dbt.type_string() }}) as state,
        cast(given_at as {{ dbt.type_timestamp() }}) as given_at,
        cast(expires_at as {{ dbt.type_timestamp() }}) as expires_at,
        cast(case purpose
            when 'crm_sync' then 'linking, contact creation and every push'
            {%- for name, field in crm_fields.items() %}
            when '{{ name }}' then 'sent to the CRM as opted out ({{ field }})'
            {%- endfor %}
            else purpose
        end as {{ dbt.type_string() }}) as excluded_from
    from excluded
)

select * from final
