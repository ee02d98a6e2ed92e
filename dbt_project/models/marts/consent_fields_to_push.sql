-- Consent carried to the CRM (crm_field in var consent_purposes) for linked contacts: the opt-out each linked
-- contact should hold, where it holds another value (or none known). A view over the golden table, like
-- external_ids_to_push: an answer withdrawn, given or expired reaches the contact at the next push.
{%- set carried = idlink.carried_purposes() %}
with

links as (
    select identity_provider, identity_id, crm, contact_id
    from {{ ref('identity_contact_links') }}
    where status = 'active'
),

identities as (
    select * from {{ ref('int_identities') }}
),

contacts as (
    select * from {{ ref('int_contacts') }}
),

wanted as (
    {%- for purpose in carried %}
    select
        l.identity_provider, l.identity_id, i.client_id, l.crm, l.contact_id,
        '{{ purpose.name }}' as purpose,
        '{{ purpose.crm_field }}' as attribute,
        {{ idlink.consent_state('i.' ~ purpose.name ~ '_consent_answer', 'i.' ~ purpose.name ~ '_consent_expires_at') }}
            <> 'granted' as opt_out,
        c.{{ purpose.name }}_opt_out as held
    from links as l
    inner join identities as i on i.identity_provider = l.identity_provider and i.identity_id = l.identity_id
    inner join contacts as c on c.crm = l.crm and c.contact_id = l.contact_id
    where l.crm in ('{{ purpose.crm_source_field.keys() | join("', '") }}')
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- else %}
    select null as identity_provider, null as identity_id, null as client_id, null as crm, null as contact_id,
        null as purpose,
        null as attribute, cast(null as boolean) as opt_out, cast(null as boolean) as held
    where false
    {%- endfor %}
),

final as (
    select
        cast(crm as {{ dbt.type_string() }}) as crm,
        cast(contact_id as {{ dbt.type_string() }}) as contact_id,
        cast(attribute as {{ dbt.type_string() }}) as attribute,
        cast(opt_out as boolean) as value,
        cast(purpose as {{ dbt.type_string() }}) as purpose,
        cast(identity_provider as {{ dbt.type_string() }}) as identity_provider,
        cast(identity_id as {{ dbt.type_string() }}) as identity_id,
        cast(client_id as {{ dbt.type_string() }}) as client_id
    from wanted
    where held is null or held <> opt_out
)

select * from final
