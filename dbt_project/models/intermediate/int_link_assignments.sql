{#- One-to-one assignment, rank by rank, strongest first (macro assignment_ranks: each deterministic rule, the match
    model's links, its review band): at each rank only identities and contacts that no stronger rank settled
    compete. Within a scored rank an identity keeps its most likely contacts and a contact its most likely
    identities; a contact claimed by several identities is contested (review); several contacts of one identity
    are CRM duplicates of one person (one survives). Review-band candidates never link: they go to review.
    Identities that may not be linked (consent not granted, deleted) compete too: a contact more likely theirs is
    not given to a weaker claimant, and an equal claim of theirs makes the contact contested. Only the outcomes of
    identities that may be linked are kept. A linking candidate alone on both sides is linked directly. -#}
{%- set ranks = idlink.assignment_ranks() -%}
{%- set last_linking = idlink.last_linking_rank() -%}
with

-- candidates carry whether the identity may be linked and what the survivor order reads; vetoed ones never compete
competing_candidates as (
    select cand.*
    from {{ ref('int_link_candidates') }} as cand
    where cand.rejected_reason is null
),

-- identities (per crm) and contacts with more than one competing candidate
contended_identities as (
    select identity_provider, identity_id, crm
    from competing_candidates
    group by identity_provider, identity_id, crm
    having count(*) > 1
),

contended_contacts as (
    select crm, contact_id
    from competing_candidates
    group by crm, contact_id
    having count(*) > 1
),

-- A linking candidate whose identity and contact have no other candidate is a link whatever its rank: nothing
-- competes with it and it competes with nothing. Most candidates are such; only the others, whole groups of
-- related candidates (and review-band candidates, which never link), need the rank-by-rank assignment (which
-- sorts, so grows faster than linearly), and it decides over them alone as it would over all.
flagged_candidates as (
    select
        cand.*,
        cand.rule_rank > {{ last_linking }}
        or exists (
            select 1 from contended_identities as s
            where s.identity_provider = cand.identity_provider and s.identity_id = cand.identity_id
                and s.crm = cand.crm)
        or exists (
            select 1 from contended_contacts as s
            where s.crm = cand.crm and s.contact_id = cand.contact_id) as ranked
    from competing_candidates as cand
),

unopposed_candidates as (
    select * from flagged_candidates where not ranked
),

ranked_candidates as (
    select * from flagged_candidates where ranked
),

{% for rank in ranks %}
{%- set r = rank['rank'] %}
-- rank {{ r }}: {{ rank['name'] }}
open_{{ r }} as (
    select cand.*
    from ranked_candidates as cand
    where cand.rule_rank = {{ r }}
    {%- if r > 1 %}
        and not exists (
            select 1 from settled_identities_{{ r - 1 }} as s
            where s.identity_provider = cand.identity_provider and s.identity_id = cand.identity_id
                and s.crm = cand.crm)
        and not exists (
            select 1 from settled_contacts_{{ r - 1 }} as s
            where s.crm = cand.crm and s.contact_id = cand.contact_id)
    {%- endif %}
),
{%- if rank['links'] %}

best_{{ r }} as (
    {%- if not rank['scored'] %}
    -- a constant confidence: every candidate of this rank is equally good
    select * from open_{{ r }}
    {%- else %}
    select *
    from (
        select
            open_{{ r }}.*,
            max(match_confidence) over (partition by identity_provider, identity_id, crm) as identity_best,
            max(match_confidence) over (partition by crm, contact_id) as contact_best
        from open_{{ r }}
    ) as scored
    where match_confidence = identity_best and match_confidence = contact_best
    {%- endif %}
),

counted_{{ r }} as (
    select
        best_{{ r }}.*,
        count(*) over (partition by crm, contact_id) as identities_for_contact
    from best_{{ r }}
),

-- one window (one sort per identity's contacts) gives how many there are, which survives and its id
uncontested_{{ r }} as (
    select
        t.*,
        row_number() over survivors as survivor_rank,
        first_value(t.contact_id) over survivors as surviving_contact_id
    from counted_{{ r }} as t
    where t.identities_for_contact = 1
    window survivors as (
        partition by t.identity_provider, t.identity_id, t.crm order by {{ idlink.survivor_order('t') }}
        rows between unbounded preceding and unbounded following
    )
),

outcomes_{{ r }} as (
    select
        identity_provider, identity_id, crm, contact_id, match_rule, rule_rank, match_confidence, identity_may_link,
        case when survivor_rank = 1 then 'link' else 'duplicate' end as outcome,
        case when survivor_rank = 1 then null else 'crm_duplicate' end as reason,
        surviving_contact_id,
        identity_holds_contact_id,
        contact_holds_identity_id
    from uncontested_{{ r }}
    union all
    select
        identity_provider, identity_id, crm, contact_id, match_rule, rule_rank, match_confidence, identity_may_link,
        'conflict' as outcome,
        'contested_contact' as reason,
        cast(null as {{ dbt.type_string() }}) as surviving_contact_id,
        identity_holds_contact_id,
        contact_holds_identity_id
    from counted_{{ r }}
    where identities_for_contact > 1
),
{%- else %}

-- review band: every candidate no stronger rank settled is an uncertain match for a steward to decide
outcomes_{{ r }} as (
    select
        identity_provider, identity_id, crm, contact_id, match_rule, rule_rank, match_confidence, identity_may_link,
        'conflict' as outcome,
        'uncertain_match' as reason,
        cast(null as {{ dbt.type_string() }}) as surviving_contact_id,
        identity_holds_contact_id,
        contact_holds_identity_id
    from open_{{ r }}
),
{%- endif %}

settled_identities_{{ r }} as (
    {%- if r > 1 %}
    select identity_provider, identity_id, crm from settled_identities_{{ r - 1 }}
    union all
    {%- endif %}
    select distinct identity_provider, identity_id, crm
    from outcomes_{{ r }}
    where outcome = 'link'
),

settled_contacts_{{ r }} as (
    {%- if r > 1 %}
    select crm, contact_id from settled_contacts_{{ r - 1 }}
    union all
    {%- endif %}
    select distinct crm, contact_id from outcomes_{{ r }}
),
{% endfor %}

ranked_outcomes as (
    {%- for rank in ranks %}
    select * from outcomes_{{ rank['rank'] }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

-- contacts of an already linked identity that a weaker linking rank finds later are further CRM duplicates of the
-- same person, provided no other identity has any claim on them
later_duplicates as (
    select
        cand.identity_provider, cand.identity_id, cand.crm, cand.contact_id, cand.match_rule, cand.rule_rank,
        cand.match_confidence,
        'duplicate' as outcome,
        'crm_duplicate' as reason,
        linked.contact_id as surviving_contact_id,
        cand.identity_holds_contact_id,
        cand.contact_holds_identity_id
    from ranked_candidates as cand
    inner join ranked_outcomes as linked
        on linked.outcome = 'link' and linked.identity_provider = cand.identity_provider
            and linked.identity_id = cand.identity_id and linked.crm = cand.crm
    where cand.identity_may_link
        and cand.rule_rank <= {{ last_linking }}
        and cand.contact_id <> linked.contact_id
        and not exists (
            select 1 from settled_contacts_{{ ranks[-1]['rank'] }} as s
            where s.crm = cand.crm and s.contact_id = cand.contact_id)
        -- a contact with more than one candidate is claimed by another identity too
        and not exists (
            select 1 from contended_contacts as other
            where other.crm = cand.crm and other.contact_id = cand.contact_id)
),

final as (
    select
        identity_provider, identity_id, crm, contact_id, match_rule, rule_rank, match_confidence,
        'link' as outcome,
        cast(null as {{ dbt.type_string() }}) as reason,
        contact_id as surviving_contact_id,
        identity_holds_contact_id,
        contact_holds_identity_id
    from unopposed_candidates
    where identity_may_link
    union all
    select
        identity_provider, identity_id, crm, contact_id, match_rule, rule_rank, match_confidence, outcome, reason,
        surviving_contact_id, identity_holds_contact_id, contact_holds_identity_id
    from ranked_outcomes
    where identity_may_link
    union all
    select * from later_duplicates
)

select * from final
