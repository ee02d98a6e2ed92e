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

-- a contact merged away that the CRM keeps (Dataverse deactivates the subordinate) gives up the identity id it
-- still carries once the identity is linked to the survivor: the alternate key is unique over inactive records too
merged_away as (
    select
        c.crm as target_system, c.contact_id as target_id, f.attribute, cast(null as {{ dbt.type_string() }}) as value,
        'merged' as reason, l.identity_provider, l.identity_id, c.crm, c.contact_id
    from {{ ref('int_contacts') }} as c
    inner join crm_fields as f on f.crm = c.crm
    inner join links as l
        on l.crm = c.crm and l.identity_id = c.external_user_id and l.status = 'active' and l.contact_id <> c.contact_id
    where c.is_deleted and c.record_exists and c.master_record_id is not null
),

-- the identity learns its contact id; on withdrawal, or when the CRM deleted the contact, it is cleared (a deleted
-- identity has nothing to write on). It has one attribute for it: with several CRMs it holds the contact id of the
-- first CRM of var crms in which the identity has an active link (the others are linked on the CRM side alone),
-- and it is cleared only when no CRM has one. Identities of providers outside var contact_id_write_back_providers
-- get nothing written (SCIM directories are read only).
identity_links as (
    select
        l.*,
        row_number() over (
            partition by l.identity_provider, l.identity_id
            order by
                case when l.status = 'active' then 0 else 1 end,
                -- with none active: the link whose id the identity holds, which is the one to clear
                case when l.status = 'active' or l.identity_holds_contact_id then 0 else 1 end,
                case l.crm {%- for crm in var('crms') %} when '{{ crm }}' then {{ loop.index }}{% endfor %} else {{ var('crms') | length + 1 }} end,
                l.contact_id
        ) as preference
    from links as l
    where l.status in ('active', 'withdrawn', 'contact_deleted')
        and l.identity_provider in ({{ "'" ~ var('contact_id_write_back_providers') | join("', '") ~ "'" }})
),

identity_side as (
    select
        l.identity_provider as target_system, l.identity_id as target_id,
        '{{ var("contact_id_attribute") }}' as attribute,
        case when l.status = 'active' then l.contact_id end as value,
        case when l.status = 'active' then 'link' else l.status end as reason,
        l.identity_provider, l.identity_id, l.crm, l.contact_id
    from identity_links as l
    where l.preference = 1
        and ((l.status = 'active' and not l.identity_holds_contact_id)
            or (l.status <> 'active' and l.identity_holds_contact_id))
),

final as (
    select * from crm_side
    union all
    select * from merged_away
    union all
    select * from identity_side
),

-- the application the identity registered through: which field-mapping entry writes the row
clients as (
    select identity_provider, identity_id, client_id from {{ ref('int_identities') }}
)

select
    cast(f.target_system as {{ dbt.type_string() }}) as target_system,
    cast(f.target_id as {{ dbt.type_string() }}) as target_id,
    cast(f.attribute as {{ dbt.type_string() }}) as attribute,
    cast(f.value as {{ dbt.type_string() }}) as value,
    cast(f.reason as {{ dbt.type_string() }}) as reason,
    cast(f.identity_provider as {{ dbt.type_string() }}) as identity_provider,
    cast(f.identity_id as {{ dbt.type_string() }}) as identity_id,
    cast(f.crm as {{ dbt.type_string() }}) as crm,
    cast(f.contact_id as {{ dbt.type_string() }}) as contact_id,
    cast(c.client_id as {{ dbt.type_string() }}) as client_id
from final as f
left join clients as c on c.identity_provider = f.identity_provider and c.identity_id = f.identity_id
