-- Who a consent purpose excluded and from what (keys, purpose, state and times only).
select * from {{ ref('consent_exclusions') }}
