-- Several CRM contacts of one person: the surviving contact carries the link, the others are listed here.
with

duplicates as (
    select * from {{ ref('int_link_assignments') }}
    where outcome = 'duplicate'
),

final as (
    select
        cast(crm as {{ dbt.type_string() }}) as crm,
        cast(surviving_contact_id as {{ dbt.type_string() }}) as surviving_contact_id,
        cast(contact_id as {{ dbt.type_string() }}) as duplicate_contact_id,
        cast(identity_provider as {{ dbt.type_string() }}) as identity_provider,
        cast(identity_id as {{ dbt.type_string() }}) as identity_id,
        cast('same_person_' || match_rule as {{ dbt.type_string() }}) as reason
    from duplicates
)

select * from final
