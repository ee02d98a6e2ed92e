{# Candidate pairs with their comparison levels, in steps (CTEs after the flattened pairs `paired_rows`, macro
   paired_rows_ctes, each name prefixed with `prefix`):

     veto_levels      the levels of the comparisons the vetoes read
     vetoed_pairs     + veto_reason: the first veto the pair meets, or null
     settled_pairs    + settled_rule: the deterministic rule that settles the pair, or null
     compared_pairs   + every other comparison's level: only for pairs no rule settles (a settled pair is linked
                        without a score), unless `all_levels` (training compares every pair)

   The link build and training render the same steps, so both compare pairs exactly alike. #}
{% macro compared_pair_ctes(prefix, paired_rows, all_levels=false) -%}
    {%- set early = idlink.veto_comparisons() -%}
    {%- set early_comparisons = idlink.match_comparisons() | selectattr('name', 'in', early) | list -%}
    {%- set late_comparisons = idlink.match_comparisons() | rejectattr('name', 'in', early) | list %}
{{ prefix }}veto_levels as (
    select
        p.*
        {%- for comparison in early_comparisons %},
        {{ idlink.comparison_level(comparison) }} as {{ comparison['name'] }}_level
        {%- endfor %}
    from (
        select r.*
            {%- for feature in idlink.comparison_features(early_comparisons, 'r') %},
            {{ feature }}
            {%- endfor %}
        from {{ paired_rows }} as r
    ) as p
),

{{ prefix }}vetoed_pairs as (
    select p.*, {{ idlink.veto_reason() }} as veto_reason
    from {{ prefix }}veto_levels as p
),

{{ prefix }}settled_pairs as (
    select p.*, {{ idlink.settled_rule('p', 'p.veto_reason is not null') }} as settled_rule
    from {{ prefix }}vetoed_pairs as p
),

{{ prefix }}compared_pairs as (
    select
        p.*
        {%- for comparison in late_comparisons %},
        {% if all_levels -%}
        {{ idlink.comparison_level(comparison) }}
        {%- else -%}
        case when p.settled_rule is null then {{ idlink.comparison_level(comparison) }} end
        {%- endif %} as {{ comparison['name'] }}_level
        {%- endfor %}
    from (
        select s.*
            {%- for feature in idlink.comparison_features(late_comparisons, 's', none if all_levels else 's.settled_rule is null') %},
            {{ feature }}
            {%- endfor %}
        from {{ prefix }}settled_pairs as s
    ) as p
)
{%- endmacro %}
