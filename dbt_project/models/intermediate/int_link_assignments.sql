{#- One-to-one assignment, rule by rule, strongest first: at each rank only identities and contacts that no
    stronger rule settled compete. Within a rank an identity keeps its best-scoring contacts and a contact its
    best-scoring identities; a contact claimed by several identities is contested (review), several contacts
    of one identity are CRM duplicates of one person (one survives) or, for rules that cannot tell
    duplicates from look-alikes, a tie (review). Identities that may not be linked (consent not granted,
    deleted) compete too: a contact more likely theirs is not given to a weaker claimant, and an equal claim of
    theirs makes the contact contested. Only the outcomes of identities that may be linked are kept.
    A candidate alone on both sides is linked directly; only the others go through the ranks. -#}
{%- set rules = var('match_rules') -%}
{%- set survivor_rule = var('duplicate_survivor_rule') -%}
{%- if survivor_rule == 'holds_identity_id_then_most_recent' -%}
    {%- set survivor_order = "case when t.contact_holds_identity_id then 0 when t.identity_holds_contact_id then 1 else 2 end, t.contact_last_modified_at desc nulls last, t.contact_id" -%}
{%- elif survivor_rule == 'most_recent' -%}
    {%- set survivor_order = "t.contact_last_modified_at desc nulls last, t.contact_id" -%}
{%- elif survivor_rule == 'oldest' -%}
    {%- set survivor_order = "t.contact_created_at asc nulls last, t.contact_id" -%}
{%- else -%}
    {{ exceptions.raise_compiler_error("unknown duplicate_survivor_rule '" ~ survivor_rule ~ "'") }}
{%- endif -%}
with

-- candidates carry whether the identity may be linked and what the survivor order reads
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

-- A candidate whose identity and contact have no other candidate is a link whatever its rank: nothing competes
-- with it and it competes with nothing. Most candidates are such; only the others, whole groups of related
-- candidates, need the rank-by-rank assignment (which sorts, so grows faster than linearly), and it decides
-- over them alone as it would over all.
flagged_candidates as (
    select
        cand.*,
        exists (
            select 1 from contended_identities as s
            where s.identity_provider = cand.identity_provider and s.identity_id = cand.identity_id
                and s.crm = cand.crm)
        or exists (
            select 1 from contended_contacts as s
            where s.crm = cand.crm and s.contact_id = cand.contact_id) as contended
    from competing_candidates as cand
),

unopposed_candidates as (
    select * from flagged_candidates where not contended
),

contended_candidates as (
    select * from flagged_candidates where contended
),

{% for rule in rules %}
{%- set r = loop.index %}
open_{{ r }} as (
    select cand.*
    from contended_candidates as cand
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

best_{{ r }} as (
    {%- if rule['confidence'] is number %}
    -- a constant confidence: every candidate of this rule is equally good
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
        count(*) over survivors as uncontested_contacts,
        row_number() over survivors as survivor_rank,
        first_value(t.contact_id) over survivors as surviving_contact_id
    from counted_{{ r }} as t
    where t.identities_for_contact = 1
    window survivors as (
        partition by t.identity_provider, t.identity_id, t.crm order by {{ survivor_order }}
        rows between unbounded preceding and unbounded following
    )
),

outcomes_{{ r }} as (
    select
        identity_provider, identity_id, crm, contact_id, match_rule, rule_rank, match_confidence, identity_may_link,
        case
            when uncontested_contacts = 1 or (on_tie = 'duplicates' and survivor_rank = 1) then 'link'
            when on_tie = 'duplicates' then 'duplicate'
            else 'conflict'
        end as outcome,
        case
            when uncontested_contacts = 1 or (on_tie = 'duplicates' and survivor_rank = 1) then null
            when on_tie = 'duplicates' then 'crm_duplicate'
            else 'tie'
        end as reason,
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

settled_identities_{{ r }} as (
    {%- if r > 1 %}
    select identity_provider, identity_id, crm from settled_identities_{{ r - 1 }}
    union all
    {%- endif %}
    select distinct identity_provider, identity_id, crm
    from outcomes_{{ r }}
    where outcome = 'link' or reason = 'tie'
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
    {%- for rule in rules %}
    select * from outcomes_{{ loop.index }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

-- contacts of an already linked identity that a weaker rule finds later are further CRM duplicates of the same
-- person, provided no other identity has any claim on them
later_duplicates as (
    select
        cand.identity_provider, cand.identity_id, cand.crm, cand.contact_id, cand.match_rule, cand.rule_rank,
        cand.match_confidence,
        'duplicate' as outcome,
        'crm_duplicate' as reason,
        linked.contact_id as surviving_contact_id,
        cand.identity_holds_contact_id,
        cand.contact_holds_identity_id
    from contended_candidates as cand
    inner join ranked_outcomes as linked
        on linked.outcome = 'link' and linked.identity_provider = cand.identity_provider
            and linked.identity_id = cand.identity_id and linked.crm = cand.crm
    where cand.identity_may_link
        and cand.contact_id <> linked.contact_id
        and not exists (
            select 1 from settled_contacts_{{ rules | length }} as s
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
