{#- Review queue: pairs the rules could not settle (a contact claimed equally by several identities, several
    equally good look-alikes) and pairs a rule found but vetoed (e.g. a family mailbox), for identities left
    without a link. detected_at keeps the first build that saw the conflict. -#}
{%- set previous_relation = adapter.get_relation(this.database, this.schema, this.identifier) if execute else none -%}
with

linked as (
    select identity_provider, identity_id, crm, contact_id
    from {{ ref('int_link_assignments') }}
    where outcome = 'link'
),

unsettled as (
    select identity_provider, identity_id, crm, contact_id, match_rule, match_confidence, reason
    from {{ ref('int_link_assignments') }}
    where outcome = 'conflict'
),

vetoed as (
    select cand.identity_provider, cand.identity_id, cand.crm, cand.contact_id, cand.match_rule,
        cand.match_confidence, cand.rejected_reason as reason
    from {{ ref('int_link_candidates') }} as cand
    where cand.rejected_reason is not null
        and cand.identity_may_link
        -- neither side linked (the assignment's links are the golden table's active rows; read from it, this
        -- model need not wait for the golden table). Two anti-joins rather than one with an OR: each stays a
        -- hash join.
        and not exists (
            select 1 from linked as l
            where l.crm = cand.crm and l.identity_provider = cand.identity_provider and l.identity_id = cand.identity_id)
        and not exists (
            select 1 from linked as l
            where l.crm = cand.crm and l.contact_id = cand.contact_id)
),

conflicts as (
    select * from unsettled
    union all
    select * from vetoed
),

final as (
    select
        cast(c.identity_provider as {{ dbt.type_string() }}) as identity_provider,
        cast(c.identity_id as {{ dbt.type_string() }}) as identity_id,
        cast(c.crm as {{ dbt.type_string() }}) as crm,
        cast(c.contact_id as {{ dbt.type_string() }}) as contact_id,
        cast(c.match_rule as {{ dbt.type_string() }}) as match_rule,
        cast(c.match_confidence as double precision) as match_confidence,
        cast(c.reason as {{ dbt.type_string() }}) as reason,
        {%- if previous_relation is not none %}
        coalesce(p.detected_at, {{ idlink.run_timestamp() }}) as detected_at
    from conflicts as c
    left join {{ previous_relation }} as p
        on p.identity_provider = c.identity_provider and p.identity_id = c.identity_id and p.crm = c.crm
            and p.contact_id = c.contact_id and p.reason = c.reason
        {%- else %}
        {{ idlink.run_timestamp() }} as detected_at
    from conflicts as c
        {%- endif %}
)

select * from final
