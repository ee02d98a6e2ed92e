-- The golden links as analysts read them: keys, rule, confidence and status (no personal field).
select * from {{ ref('identity_contact_links') }}
