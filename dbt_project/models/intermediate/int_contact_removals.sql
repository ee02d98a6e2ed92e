-- Identities whose contact was deleted or merged away in the CRM, one row per (identity, crm): the CRM's
-- decision is respected instead of the link silently disappearing and the contact being created again.
-- A merge is followed (MasterRecordId, up to var crm_merge_max_hops merges) to the surviving contact, which
-- the identity is then linked to (rule crm_merge) unless another identity holds or claims it; otherwise the link
-- stays with status contact_deleted. Identities the assignment links or sends to review are not here.
with

contacts as (
    select crm, contact_id, external_user_id, master_record_id, is_deleted from {{ ref('int_contacts') }}
),

identities as (
    select identity_provider, identity_id, carried_contact_id from {{ ref('int_identities') }}
    where {{ idlink.linkable_identity() }}
),

settled as (
    select identity_provider, identity_id, crm, contact_id, outcome from {{ ref('int_link_assignments') }}
    where outcome in ('link', 'conflict')
),

-- what says an identity had a contact: the previous build's link (a link made by following a merge stays
-- followed), the contact id the identity carries, the identity id a deleted contact carries
evidence as (
    select identity_provider, identity_id, crm, contact_id, match_rule, match_confidence, 1 as priority
    from {{ ref('int_previous_links') }}
    where status in ('active', 'contact_deleted')
    union all
    select i.identity_provider, i.identity_id, c.crm, c.contact_id, 'carried_id', 1.0, 2
    from identities as i
    inner join contacts as c on c.contact_id = i.carried_contact_id
    where c.is_deleted
    union all
    select i.identity_provider, i.identity_id, c.crm, c.contact_id, 'carried_id', 1.0, 3
    from identities as i
    inner join contacts as c on c.external_user_id = i.identity_id
    where c.is_deleted
),

strongest_evidence as (
    select * from (
        select
            evidence.*,
            row_number() over (
                partition by identity_provider, identity_id, crm order by priority, contact_id
            ) as evidence_rank
        from evidence
    ) as ranked
    where evidence_rank = 1
),

-- hop 0 is the contact itself: still there only for a link made by following a merge
followed as (
    select
        e.identity_provider, e.identity_id, e.crm, e.contact_id as removed_contact_id, e.match_rule,
        e.match_confidence,
        coalesce(
            {%- for hop in range(var('crm_merge_max_hops') + 1) %}
            case when not h{{ hop }}.is_deleted then h{{ hop }}.contact_id end{{ ',' if not loop.last }}
            {%- endfor %}
        ) as surviving_contact_id
    from strongest_evidence as e
    inner join identities as i on i.identity_provider = e.identity_provider and i.identity_id = e.identity_id
    inner join contacts as h0 on h0.crm = e.crm and h0.contact_id = e.contact_id
    {%- for hop in range(1, var('crm_merge_max_hops') + 1) %}
    left join contacts as h{{ hop }}
        on h{{ hop }}.crm = h{{ hop - 1 }}.crm and h{{ hop }}.contact_id = h{{ hop - 1 }}.master_record_id
        and h{{ hop - 1 }}.is_deleted
    {%- endfor %}
    where (h0.is_deleted or e.match_rule = 'crm_merge')
        and not exists (
            select 1 from settled as s
            where s.identity_provider = e.identity_provider and s.identity_id = e.identity_id and s.crm = e.crm)
),

-- a survivor is taken only when no identity holds it by the assignment and no other identity claims it
free_survivors as (
    select f.crm, f.surviving_contact_id
    from followed as f
    where f.surviving_contact_id is not null
        and not exists (
            select 1 from settled as s
            where s.outcome = 'link' and s.crm = f.crm and s.contact_id = f.surviving_contact_id)
    group by f.crm, f.surviving_contact_id
    having count(*) = 1
),

final as (
    select
        f.identity_provider,
        f.identity_id,
        f.crm,
        f.removed_contact_id,
        f.surviving_contact_id,
        coalesce(s.surviving_contact_id, f.removed_contact_id) as contact_id,
        case when s.surviving_contact_id is not null then 'crm_merge' else f.match_rule end as match_rule,
        case when s.surviving_contact_id is not null then 1.0 else f.match_confidence end as match_confidence,
        case when s.surviving_contact_id is not null then 'active' else 'contact_deleted' end as status
    from followed as f
    left join free_survivors as s on s.crm = f.crm and s.surviving_contact_id = f.surviving_contact_id
)

select * from final
