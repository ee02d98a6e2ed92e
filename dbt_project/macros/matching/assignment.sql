{# The ranks of the one-to-one assignment (model int_link_assignments), strongest first: each deterministic rule,
   then the match model's links, then its review band. `scored`: candidates of the rank differ in confidence, so
   each side keeps its best; `links`: the rank may link (the review band never does: its candidates go to
   review). Several contacts one identity keeps at a linking rank are CRM duplicates of one person: each is at
   least as likely that identity's as the link threshold asks. #}
{% macro assignment_ranks() -%}
    {%- set ranks = [] -%}
    {%- for rule in idlink.deterministic_rule_ranks() -%}
        {%- do ranks.append({'name': rule['name'], 'rank': rule['rank'], 'scored': false, 'links': true}) -%}
    {%- endfor -%}
    {%- do ranks.append({'name': 'match_model', 'rank': ranks | length + 1, 'scored': true, 'links': true}) -%}
    {%- do ranks.append({'name': 'match_model_review', 'rank': ranks | length + 1, 'scored': true, 'links': false}) -%}
    {{ return(ranks) }}
{%- endmacro %}

{# The rank of a model-scored candidate by its `decision` ('link' or 'review'). #}
{% macro model_rank(decision) -%}
    {%- set ranks = idlink.assignment_ranks() -%}
    case when {{ decision }} = 'link' then {{ ranks[-2]['rank'] }} else {{ ranks[-1]['rank'] }} end
{%- endmacro %}

{# The highest rank that may link. #}
{% macro last_linking_rank() -%}
    {{ return(idlink.assignment_ranks() | selectattr('links') | map(attribute='rank') | max) }}
{%- endmacro %}

{# The order in which several contacts of one identity survive (var duplicate_survivor_rule), over candidates `t`. #}
{% macro survivor_order(t='t') -%}
    {%- set rule = var('duplicate_survivor_rule') -%}
    {%- if rule == 'holds_identity_id_then_most_recent' -%}
        case when {{ t }}.contact_holds_identity_id then 0 when {{ t }}.identity_holds_contact_id then 1 else 2 end,
        {{ t }}.contact_last_modified_at desc nulls last, {{ t }}.contact_id
    {%- elif rule == 'most_recent' -%}
        {{ t }}.contact_last_modified_at desc nulls last, {{ t }}.contact_id
    {%- elif rule == 'oldest' -%}
        {{ t }}.contact_created_at asc nulls last, {{ t }}.contact_id
    {%- else -%}
        {{ exceptions.raise_compiler_error("unknown duplicate_survivor_rule '" ~ rule ~ "'") }}
    {%- endif -%}
{%- endmacro %}
