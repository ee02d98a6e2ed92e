-- The golden table: one row per (identity, crm) that is linked now (active) or was linked and must be undone
-- (withdrawn: consent no longer granted; deleted: identity deleted; contact_deleted: the contact was deleted in
-- the CRM), with when the link was first seen. A contact merged away in the CRM is followed to the survivor.
with

contacts as (
    select crm, contact_id, external_user_id from {{ ref('int_contacts') }}
    where not is_deleted
),

previous as (
    select * from {{ ref('int_previous_links') }}
),

active as (
    select
        identity_provider, identity_id, crm, contact_id, match_rule, match_confidence,
        'active' as status,
        'granted' as consent_state,
        identity_holds_contact_id,
        contact_holds_identity_id
    from {{ ref('int_link_assignments') }}
    where outcome = 'link'
),

-- identities that may not be linked any more; a link existed if the previous build had one or an id is
-- still carried on either side
ineligible as {{ idlink.materialized_cte() }} (
    select identity_provider, identity_id, carried_contact_id, is_deleted, consent_state
    from {{ ref('int_identities') }}
    where not ({{ idlink.linkable_identity() }})
),

ended_evidence as (
    select i.identity_provider, i.identity_id, p.crm, p.contact_id, p.match_rule, p.match_confidence, 1 as priority
    from ineligible as i
    inner join previous as p on p.identity_provider = i.identity_provider and p.identity_id = i.identity_id
    union all
    select i.identity_provider, i.identity_id, c.crm, c.contact_id, 'carried_id', 1.0, 2
    from ineligible as i
    inner join contacts as c on c.external_user_id = i.identity_id
    union all
    select i.identity_provider, i.identity_id, c.crm, c.contact_id, 'carried_id', 1.0, 3
    from ineligible as i
    inner join contacts as c on c.contact_id = i.carried_contact_id
),

ended as (
    select
        e.identity_provider, e.identity_id, e.crm, e.contact_id, e.match_rule, e.match_confidence,
        case when i.is_deleted then 'deleted' else 'withdrawn' end as status,
        i.consent_state,
        {{ idlink.holds_id('i.carried_contact_id', 'e.contact_id') }} as identity_holds_contact_id,
        -- unknown when the contact is deleted or gone: there is nothing left to write on
        case when c.contact_id is not null then {{ idlink.holds_id('c.external_user_id', 'e.identity_id') }} end
            as contact_holds_identity_id
    from (
        select
            ended_evidence.*,
            row_number() over (
                partition by identity_provider, identity_id, crm order by priority, contact_id
            ) as evidence_rank
        from ended_evidence
    ) as e
    inner join ineligible as i on i.identity_provider = e.identity_provider and i.identity_id = e.identity_id
    left join contacts as c on c.crm = e.crm and c.contact_id = e.contact_id
    where e.evidence_rank = 1
),

-- contacts deleted or merged away in the CRM (only for identities the assignment neither links nor reviews)
removed as (
    select
        r.identity_provider, r.identity_id, r.crm, r.contact_id, r.match_rule, r.match_confidence, r.status,
        'granted' as consent_state,
        {{ idlink.holds_id('i.carried_contact_id', 'r.contact_id') }} as identity_holds_contact_id,
        -- unknown when the contact is deleted: there is nothing left to write on
        case when r.status = 'active' then {{ idlink.holds_id('c.external_user_id', 'r.identity_id') }} end
            as contact_holds_identity_id
    from {{ ref('int_contact_removals') }} as r
    inner join {{ ref('int_identities') }} as i
        on i.identity_provider = r.identity_provider and i.identity_id = r.identity_id
    left join contacts as c on c.crm = r.crm and c.contact_id = r.contact_id
),

current_links as (
    select * from active
    union all
    select * from ended
    union all
    select * from removed
),

final as (
    select
        cast(l.identity_provider as {{ dbt.type_string() }}) as identity_provider,
        cast(l.identity_id as {{ dbt.type_string() }}) as identity_id,
        cast(l.crm as {{ dbt.type_string() }}) as crm,
        cast(l.contact_id as {{ dbt.type_string() }}) as contact_id,
        cast(l.match_rule as {{ dbt.type_string() }}) as match_rule,
        cast(l.match_confidence as double precision) as match_confidence,
        cast(l.status as {{ dbt.type_string() }}) as status,
        cast(l.consent_state as {{ dbt.type_string() }}) as consent_state,
        cast(l.identity_holds_contact_id as boolean) as identity_holds_contact_id,
        cast(l.contact_holds_identity_id as boolean) as contact_holds_identity_id,
        case when p.contact_id = l.contact_id then p.first_seen_at else {{ idlink.run_timestamp() }} end as first_seen_at,
        {{ idlink.run_timestamp() }} as last_seen_at,
        case when p.contact_id = l.contact_id and p.linked_at is not null then p.linked_at
             else {{ idlink.run_timestamp() }} end as linked_at
    from current_links as l
    left join previous as p
        on p.identity_provider = l.identity_provider and p.identity_id = l.identity_id and p.crm = l.crm
)

select * from final
