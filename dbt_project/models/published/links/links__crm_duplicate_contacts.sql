-- CRM duplicates of one person: keys only.
select * from {{ ref('crm_duplicate_contacts') }}
