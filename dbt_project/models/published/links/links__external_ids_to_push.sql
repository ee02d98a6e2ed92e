-- Ids a system still lacks (or must clear): record ids only.
select * from {{ ref('external_ids_to_push') }}
