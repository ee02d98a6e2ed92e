-- What each linked contact's mapped fields should hold: the linked identity's current values of every attribute
-- the field mapping can send to a contact (event updated). The reverse ETL writes, per contact and field, only a
-- value that differs from the last one the CRM accepted, for the fields the identity's client entry sends. A view
-- over the golden table, like external_ids_to_push.
with

links as (
    select identity_provider, identity_id, crm, contact_id
    from {{ ref('identity_contact_links') }}
    where status = 'active'
),

identities as (
    select
        identity_provider, identity_id, client_id, email, given_name, family_name, phone_e164, street_address,
        city, postal_code, country_code, created_at, email_verified, last_login_at, last_updated_at
    from {{ ref('int_identities') }}
),

final as (
    select
        cast(l.crm as {{ dbt.type_string() }}) as crm,
        cast(l.contact_id as {{ dbt.type_string() }}) as contact_id,
        cast(l.identity_provider as {{ dbt.type_string() }}) as identity_provider,
        cast(l.identity_id as {{ dbt.type_string() }}) as identity_id,
{{ idlink.contact_values('i') }}
    from links as l
    inner join identities as i on i.identity_provider = l.identity_provider and i.identity_id = l.identity_id
)

select * from final
