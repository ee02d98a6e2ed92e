{# The deterministic tier (var deterministic_rules) and the vetoes (var match_vetoes).

   A rule holds for a pair that shares one of its blocking keys (on the real values) and meets all its `require`
   conditions; the first rule that holds settles the pair, which is then linked without scoring, unless the rule
   is vetoable and the pair meets a veto. A veto is a combination of comparison levels that no automatic link may
   have (a family's shared mailbox); a vetoed pair is scored like any other, and goes to review at best. #}

{# Conditions a rule may `require`, over a flattened pair row `p`. #}
{% macro rule_condition(name, p='p') -%}
    {%- if name == 'emails_valid' -%}
        coalesce({{ p }}.email_valid_i and {{ p }}.email_valid_c, false)
    {%- else -%}
        {{ exceptions.raise_compiler_error("deterministic rule condition '" ~ name ~ "' is not defined in macros/matching/deterministic.sql") }}
    {%- endif -%}
{%- endmacro %}

{# Whether `rule` holds for `p`. #}
{% macro rule_holds(rule, p='p') -%}
    {%- set conditions = [] -%}
    {%- for key in rule['blocking'] -%}
        {%- do conditions.append(idlink.key_condition(key, p ~ '.{}_i', p ~ '.{}_c')) -%}
    {%- endfor -%}
    (coalesce({{ conditions | join(' or ') }}, false)
     {%- for name in rule.get('require', []) %} and {{ idlink.rule_condition(name, p) }}{% endfor %})
{%- endmacro %}

{# The first rule that holds for `p` and settles it (a vetoable rule only when `vetoed` does not hold), or null. #}
{% macro settled_rule(p='p', vetoed='false') -%}
    case
        {%- for rule in var('deterministic_rules') %}
        when {{ idlink.rule_holds(rule, p) }}{% if rule.get('vetoable', true) %} and not ({{ vetoed }}){% endif %} then '{{ rule["name"] }}'
        {%- endfor %}
    end
{%- endmacro %}

{# Rank (1 = strongest), constant confidence and tie handling of each deterministic rule: several contacts of one
   identity found by the same rule are CRM duplicates of one person. #}
{% macro deterministic_rule_ranks() -%}
    {%- set ranks = [] -%}
    {%- for rule in var('deterministic_rules') -%}
        {%- do ranks.append({'name': rule['name'], 'rank': loop.index, 'confidence': rule['confidence'], 'on_tie': 'duplicates'}) -%}
    {%- endfor -%}
    {{ return(ranks) }}
{%- endmacro %}

{# Comparisons the vetoes read (their levels are computed before the deterministic tier decides). #}
{% macro veto_comparisons() -%}
    {%- set names = [] -%}
    {%- for veto in var('match_vetoes') -%}
        {%- for name in veto['when'].keys() if name not in names -%}{%- do names.append(name) -%}{%- endfor -%}
    {%- endfor -%}
    {{ return(names) }}
{%- endmacro %}

{# The reason of the first veto a pair row `p` (with its <comparison>_level columns) meets, or null. #}
{% macro veto_reason(p='p') -%}
    {%- if var('match_vetoes') -%}
    case
        {%- for veto in var('match_vetoes') %}
        {%- set terms = [] %}
        {%- for name, levels in veto['when'].items() %}
            {%- set comparison = idlink.comparison_named(name) %}
            {%- set numbers = [] %}
            {%- for level in levels %}{%- do numbers.append(idlink.comparison_level_number(comparison, level) | string) -%}{%- endfor %}
            {%- do terms.append(p ~ '.' ~ name ~ '_level in (' ~ numbers | join(', ') ~ ')') %}
        {%- endfor %}
        when {{ terms | join(' and ') }} then '{{ veto["reason"] }}'
        {%- endfor %}
    end
    {%- else -%}
    cast(null as {{ dbt.type_string() }})
    {%- endif -%}
{%- endmacro %}
