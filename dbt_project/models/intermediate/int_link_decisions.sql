-- The steward decision in force for each identity-contact pair: the latest one recorded (python -m stewardship).
-- link: the pair is linked first (deterministic rule steward_link, through int_contacts.steward_identity_id);
-- never_link / unlink: the pair is never compared, linked or offered for review (int_link_candidates).
with

source as (
    select * from {{ source('link_decisions', 'decisions') }}
),

ranked as (
    select
        source.*,
        row_number() over (
            partition by identity_provider, identity_id, crm, contact_id
            order by decided_at desc, decision_id desc
        ) as recency
    from source
),

final as (
    select identity_provider, identity_id, crm, contact_id, decision, decided_by, decided_at, reason, decision_id
    from ranked
    where recency = 1
)

select * from final
