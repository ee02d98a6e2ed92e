-- Consented identities with no contact in a CRM and no open question about one (tie or contested contact). An
-- identity whose contact was deleted or merged away in the CRM gets none (int_contact_removals), unless var
-- recreate_deleted_contacts asks to create again a contact that was deleted (not merged).
-- A purpose carried to the CRM (crm_field in var consent_purposes) comes along as an opt-out: true unless the
-- purpose is granted at this run.
{%- set carried = idlink.consent_purposes() | selectattr('crm_field', 'defined') | list %}
with

identities as (
    select
        identity_provider, identity_id, client_id, email, given_name, family_name, phone_e164, street_address, city,
        postal_code, country_code, created_at, email_verified, last_login_at, last_updated_at
        {%- for purpose in carried %},
        {{ idlink.consent_state(purpose.name ~ '_consent_answer', purpose.name ~ '_consent_expires_at') }} <> 'granted'
            as {{ purpose.name }}_opt_out
        {%- endfor %}
    from {{ ref('int_identities') }}
    where {{ idlink.linkable_identity() }}
),

crms as (
    {%- for crm in var('crms') %}
    select '{{ crm }}' as crm{% if not loop.last %} union all{% endif %}
    {%- endfor %}
),

-- (identity, crm) with a link or an open review item. The assignment's links are exactly the golden table's
-- active rows; read from it, this model runs beside the golden table instead of after it.
settled_or_in_review as (
    select identity_provider, identity_id, crm from {{ ref('int_link_assignments') }}
    where outcome in ('link', 'conflict')
    union all
    select identity_provider, identity_id, crm from {{ ref('int_contact_removals') }}
    {%- if var('recreate_deleted_contacts') %}
    where surviving_contact_id is not null
    {%- endif %}
),

final as (
    select
        cast(i.identity_provider as {{ dbt.type_string() }}) as identity_provider,
        cast(i.identity_id as {{ dbt.type_string() }}) as identity_id,
        cast(crms.crm as {{ dbt.type_string() }}) as crm,
{{ idlink.contact_values('i') }}
        {%- for purpose in carried %},
        cast(i.{{ purpose.name }}_opt_out as boolean) as {{ purpose.name }}_opt_out
        {%- endfor %}
    from identities as i
    cross join crms
    where not exists (
        select 1 from settled_or_in_review as s
        where s.identity_provider = i.identity_provider and s.identity_id = i.identity_id and s.crm = crms.crm)
)

select * from final
