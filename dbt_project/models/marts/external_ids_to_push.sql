-- Ids each side must carry (or stop carrying) so both systems point at each other; only rows whose target
-- does not hold the value already (the golden table says what each side holds).
with

links as (
    select * from {{ ref('identity_contact_links') }}
),

crm_fields as (
    {%- for crm, field in var('crm_external_id_field').items() %}
    select '{{ crm }}' as crm, '{{ field }}' as attribute{% if not loop.last %} union all{% endif %}
    {%- endfor %}
),

-- contacts an active link writes to: a contact re-linked to another identity gets that id, not a clear
actively_linked_contacts as (
    select distinct crm, contact_id from links where status = 'active'
),

crm_side as (
    select
        l.crm as target_system, l.contact_id as target_id, f.attribute,
        case when l.status = 'active' then l.identity_id end as value,
        case when l.status = 'active' then 'link' else l.status end as reason,
        l.identity_provider, l.identity_id, l.crm, l.contact_id
    from links as l
    inner join crm_fields as f on f.crm = l.crm
    left join actively_linked_contacts as relinked
        on l.status <> 'active' and relinked.crm = l.crm and relinked.contact_id = l.contact_id
    -- a deleted contact (holds unknown) gets nothing
    where (l.status = 'active' and not l.contact_holds_identity_id)
        or (l.status <> 'active' and l.contact_holds_identity_id and relinked.contact_id is null)
),

-- the identity learns its contact id; on withdrawal, or when the CRM deleted the contact, it is cleared (a deleted
-- identity has nothing to write on). It has one attribute for it, which holds the contact id of the first CRM of
-- var crms: a link in another CRM is written on that CRM's contact alone (two CRMs would otherwise overwrite each
-- other's id on every run).
identity_side as (
    select
        l.identity_provider as target_system, l.identity_id as target_id,
        '{{ var("contact_id_attribute") }}' as attribute,
        case when l.status = 'active' then l.contact_id end as value,
        case when l.status = 'active' then 'link' else l.status end as reason,
        l.identity_provider, l.identity_id, l.crm, l.contact_id
    from links as l
    where l.crm = '{{ var("crms")[0] }}'
        and ((l.status = 'active' and not l.identity_holds_contact_id)
            or (l.status in ('withdrawn', 'contact_deleted') and l.identity_holds_contact_id))
),

final as (
    select * from crm_side
    union all
    select * from identity_side
)

select
    cast(target_system as {{ dbt.type_string() }}) as target_system,
    cast(target_id as {{ dbt.type_string() }}) as target_id,
    cast(attribute as {{ dbt.type_string() }}) as attribute,
    cast(value as {{ dbt.type_string() }}) as value,
    cast(reason as {{ dbt.type_string() }}) as reason,
    cast(identity_provider as {{ dbt.type_string() }}) as identity_provider,
    cast(identity_id as {{ dbt.type_string() }}) as identity_id,
    cast(crm as {{ dbt.type_string() }}) as crm,
    cast(contact_id as {{ dbt.type_string() }}) as contact_id
from final
