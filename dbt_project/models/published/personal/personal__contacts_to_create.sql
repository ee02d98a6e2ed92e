-- The contacts idlink will create, with every field it will send.
select * from {{ ref('contacts_to_create') }}
