-- Contacts idlink will create, with the identity's personal fields masked or keyed: enough to count, group by
-- country and join on email or phone, nothing to read a person from.
with

to_create as (
    select * from {{ ref('contacts_to_create') }}
),

final as (
    select
        identity_provider,
        identity_id,
        crm,
        {{ idlink.masked_email('email') }} as email_masked,
        {{ idlink.keyed_hash('email') }} as email_key,
        {{ idlink.keyed_hash('phone_e164') }} as phone_key,
        given_name is not null as has_given_name,
        family_name is not null as has_family_name,
        street_address is not null and postal_code is not null as has_address,
        country_code
    from to_create
)

select * from final
