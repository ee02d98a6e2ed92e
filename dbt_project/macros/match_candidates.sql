{# Renders every candidate pair the configured match rules find (var match_rules): one select per rule and
   blocking key, unioned. A row is emitted when all `require` comparisons hold, or when a `reject` comparison
   holds (then `rejected_reason` is set and the pair must never be linked). #}
{% macro match_candidates(identities, contacts, rules=none) -%}
    {%- set rules = rules if rules is not none else var('match_rules') -%}
    {%- for rule in rules -%}
        {%- set rule_rank = loop.index -%}
        {%- for key in rule['blocking'] -%}
            {%- set join_terms = [] -%}
            {%- for column in key -%}
                {%- if column is mapping -%}
                    {%- do join_terms.append("i." ~ column['identity'] ~ " = c." ~ column['contact']) -%}
                {%- else -%}
                    {%- do join_terms.append("i." ~ column ~ " = c." ~ column) -%}
                {%- endif -%}
            {%- endfor -%}
            {%- set required = [] -%}
            {%- for name in rule.get('require', []) -%}
                {%- do required.append(idlink.comparison(name, 'i', 'c')) -%}
            {%- endfor -%}
            {%- set rejections = rule.get('reject', {}) -%}
            {%- if rule['confidence'] is number -%}
                {%- set confidence = rule['confidence'] -%}
            {%- else -%}
                {%- set confidence = idlink.score(rule['confidence'], 'i', 'c') -%}
            {%- endif %}
    select
        i.identity_provider,
        i.identity_id,
        c.crm,
        c.contact_id,
        '{{ rule["name"] }}' as match_rule,
        {{ rule_rank }} as rule_rank,
        cast({{ confidence }} as double precision) as match_confidence,
        '{{ rule.get("on_tie", "conflict") }}' as on_tie,
        {% if rejections -%}
        case
            {%- for name, reason in rejections.items() %}
            when {{ idlink.comparison(name, 'i', 'c') }} then '{{ reason }}'
            {%- endfor %}
        end
        {%- else -%}
        cast(null as {{ dbt.type_string() }})
        {%- endif %} as rejected_reason
    from {{ identities }} as i
    inner join {{ contacts }} as c
        on {{ join_terms | join(' and ') }}
    where not c.is_deleted and (
        ({{ required | join(' and ') if required else 'true' }})
        {%- for name in rejections.keys() %}
        or {{ idlink.comparison(name, 'i', 'c') }}
        {%- endfor %})
            {% if not loop.last %}union all{% endif %}
        {%- endfor %}
        {% if not loop.last %}union all{% endif %}
    {%- endfor %}
{%- endmacro %}
