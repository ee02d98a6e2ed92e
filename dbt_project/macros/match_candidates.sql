{# Candidate pairs of the configured match rules (var match_rules), in two steps:

   candidate_pairs: every (identity, contact) pair that shares a blocking key of some rule, once, whichever keys
   it shares (a branch skips pairs an earlier key already found). Blocking joins are equality joins only. Each
   pair carries one flag per rule (`blocked_by_rule_<n>`: it shares one of that rule's keys) and its
   similarity features (`pair_features`, `name_place_parts`), computed once per pair.

   match_candidates: each pair's strongest rule that emits it. A rule emits a pair it blocks when all its
   `require` comparisons hold, or when a `reject` comparison holds (then `rejected_reason` is set and the pair
   must never be linked); a pair a stronger rule emitted is not emitted again, so every pair appears once. #}

{% macro rule_blocking_terms(rule) -%}
    {%- set keys = [] -%}
    {%- for key in rule['blocking'] -%}
        {%- set terms = [] -%}
        {%- for column in key -%}
            {%- if column is mapping -%}
                {%- do terms.append("i." ~ column['identity'] ~ " = c." ~ column['contact']) -%}
            {%- else -%}
                {%- do terms.append("i." ~ column ~ " = c." ~ column) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- do keys.append('(' ~ terms | join(' and ') ~ ')') -%}
    {%- endfor -%}
    {{ return(keys) }}
{%- endmacro %}

{% macro candidate_pairs(identities, contacts, rules=none) -%}
    {%- set rules = rules if rules is not none else var('match_rules') -%}
    {%- set earlier_keys = [] %}
    select
        features.*,
{{ idlink.name_place_parts('features') }}
    from (
    {%- for rule in rules -%}
        {%- set rule_loop = loop -%}
        {%- for key in idlink.rule_blocking_terms(rule) %}
        select
            i.identity_provider,
            i.identity_id,
            c.crm,
            c.contact_id,
            {%- for flagged in rules %}
            coalesce({{ idlink.rule_blocking_terms(flagged) | join(' or ') }}, false) as blocked_by_rule_{{ loop.index }},
            {%- endfor %}
{{ idlink.pair_features('i', 'c') }}
        from {{ identities }} as i
        inner join {{ contacts }} as c
            on {{ key }}
        where not c.is_deleted
            {%- for earlier in earlier_keys %}
            and not coalesce({{ earlier }}, false)
            {%- endfor %}
        {%- do earlier_keys.append(key) %}
        {% if not (loop.last and rule_loop.last) %}union all{% endif %}
        {%- endfor -%}
    {%- endfor %}
    ) as features
{%- endmacro %}

{# Whether `rule` emits the pair `p`: all its requirements hold, or one of its vetoes does. #}
{% macro rule_emits(rule, rule_rank, p) -%}
    {%- set required = [] -%}
    {%- for name in rule.get('require', []) -%}
        {%- do required.append(idlink.comparison(name, p)) -%}
    {%- endfor -%}
    ({{ p }}.blocked_by_rule_{{ rule_rank }} and (({{ required | join(' and ') if required else 'true' }})
        {%- for name in rule.get('reject', {}).keys() %}
        or {{ idlink.comparison(name, p) }}
        {%- endfor %}))
{%- endmacro %}

{% macro match_candidates(pairs, rules=none) -%}
    {%- set rules = rules if rules is not none else var('match_rules') -%}
    {%- for rule in rules -%}
        {%- set rule_rank = loop.index -%}
        {%- set rejections = rule.get('reject', {}) -%}
        {%- if rule['confidence'] is number -%}
            {%- set confidence = rule['confidence'] -%}
        {%- else -%}
            {%- set confidence = idlink.score(rule['confidence'], 'p') -%}
        {%- endif %}
    select
        p.identity_provider,
        p.identity_id,
        p.crm,
        p.contact_id,
        '{{ rule["name"] }}' as match_rule,
        {{ rule_rank }} as rule_rank,
        cast({{ confidence }} as double precision) as match_confidence,
        '{{ rule.get("on_tie", "conflict") }}' as on_tie,
        {% if rejections -%}
        case
            {%- for name, reason in rejections.items() %}
            when {{ idlink.comparison(name, 'p') }} then '{{ reason }}'
            {%- endfor %}
        end
        {%- else -%}
        cast(null as {{ dbt.type_string() }})
        {%- endif %} as rejected_reason
    from {{ pairs }} as p
    where {{ idlink.rule_emits(rule, rule_rank, 'p') }}
        {%- for stronger in rules[:rule_rank - 1] %}
        and not {{ idlink.rule_emits(stronger, loop.index, 'p') }}
        {%- endfor %}
        {% if not loop.last %}union all{% endif %}
    {%- endfor %}
{%- endmacro %}
