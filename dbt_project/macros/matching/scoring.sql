{# Scoring: the match model applied to compared pairs (Fellegi-Sunter). Each comparison level has a match weight,
   log2(m / u), learned by training: m is how often two records of one person are at that level, u how often two
   records of different people are. A pair's match weight is the prior weight (the log2 odds that two records drawn
   at random are one person) plus the weights of its levels ('missing' adds nothing); its match probability is
   1 / (1 + 2^-weight). On a comparison with term_frequency, agreeing on a value adds log2(u / f) on top, f being
   the value's share among all records: a rare family name agreeing is stronger evidence than a common one.

   Decisions (vars): at least match_link_probability links (unless vetoed), at least match_review_probability goes
   to review, anything lower is dropped. #}

{# CTEs applied_version (the version of var match_model_version, else the latest trained for these comparisons)
   and model_parameters: one row with the version, the prior weight, and w_<comparison>_<level> (its match weight)
   and u_<comparison>_<level> (its u) for every level. #}
{% macro model_parameter_ctes() -%}
    {%- set pinned = var('match_model_version') %}
applied_version as (
    select max(version) as version
    from {{ idlink.match_model_relation('versions') }}
    {%- if pinned is not none %}
    where version = {{ pinned }}
    {%- else %}
    where comparisons_fingerprint = '{{ idlink.comparisons_fingerprint() }}'
    {%- endif %}
),

model_parameters as (
    select
        v.version as model_version,
        v.prior_weight
        {%- for comparison in idlink.match_comparisons() %}
        {%- for level in range(1, comparison['levels'] | length + 2) %},
        coalesce(max(case when p.comparison = '{{ comparison["name"] }}' and p.level = {{ level }} then p.match_weight end), 0)
            as w_{{ comparison['name'] }}_{{ level }}
        {%- if level == idlink.term_frequency_level(comparison) %},
        max(case when p.comparison = '{{ comparison["name"] }}' and p.level = {{ level }} then p.u end)
            as u_{{ comparison['name'] }}_{{ level }}
        {%- endif %}
        {%- endfor %}
        {%- endfor %}
    from {{ idlink.match_model_relation('versions') }} as v
    inner join applied_version as a on a.version = v.version
    left join {{ idlink.match_model_relation('parameters') }} as p on p.version = v.version
    group by v.version, v.prior_weight
)
{%- endmacro %}

{# The level of `comparison` whose weight a value's frequency adjusts (the exact level on its one `column`), or none. #}
{% macro term_frequency_level(comparison) -%}
    {%- if comparison.get('term_frequency') and 'column' in comparison -%}
        {%- for level in comparison['levels'] -%}
            {%- if level.get('kind') == 'exact' and level.get('column', comparison['column']) == comparison['column'] -%}
                {{ return(loop.index) }}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{# A CTE <comparison>_frequencies per comparison with term_frequency: each value of its column and its share among
   all identities' and contacts' values (the sides are the CTEs identity_side and contact_side). #}
{% macro term_frequency_ctes() -%}
    {%- for comparison in idlink.term_frequency_comparisons() %}
{{ comparison['name'] }}_frequencies as (
    select value, cast(count(*) as double precision) / sum(count(*)) over () as frequency
    from (
        select {{ comparison['column'] }} as value from identity_side
        union all
        select {{ comparison['column'] }} as value from contact_side
    ) as v
    where value is not null
    group by value
){{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{# The joins that give each compared pair `p` the frequency of the value it agrees on (null otherwise). #}
{% macro term_frequency_joins(p='p') -%}
    {%- for comparison in idlink.term_frequency_comparisons() %}
    left join {{ comparison['name'] }}_frequencies as {{ comparison['name'] }}_tf
        on {{ p }}.{{ comparison['name'] }}_level = {{ idlink.term_frequency_level(comparison) }}
            and {{ comparison['name'] }}_tf.value = {{ p }}.{{ comparison['column'] }}_i
    {%- endfor %}
{%- endmacro %}

{# The weight `comparison`'s level adds for the pair `p` with the parameter row `m` (a level training could not
   estimate has weight 0), before any term frequency adjustment. #}
{% macro level_weight(comparison, p='p', m='m') -%}
    {%- set name = comparison['name'] -%}
    case {{ p }}.{{ name }}_level
        {%- for level in range(1, comparison['levels'] | length + 2) %}
        when {{ level }} then {{ m }}.w_{{ name }}_{{ level }}
        {%- endfor %}
        else 0
    end
{%- endmacro %}

{# What agreeing on its value adds to `comparison`'s exact level, log2(u / f): positive for a value rarer than u
   says two records share by chance, negative for a more common one (null when the pair is at another level). #}
{% macro term_frequency_adjustment(comparison, p='p', m='m') -%}
    {%- set name = comparison['name'] -%}
    {%- set level = idlink.term_frequency_level(comparison) -%}
    case when {{ p }}.{{ name }}_level = {{ level }} then
        case when {{ m }}.w_{{ name }}_{{ level }} <> 0 and {{ m }}.u_{{ name }}_{{ level }} > 0 and {{ name }}_tf.frequency > 0
             then ln({{ m }}.u_{{ name }}_{{ level }} / {{ name }}_tf.frequency) / ln(2) else 0 end
    end
{%- endmacro %}

{# The comparisons whose exact level a value's frequency adjusts. #}
{% macro term_frequency_comparisons() -%}
    {%- set found = [] -%}
    {%- for comparison in idlink.match_comparisons() if idlink.term_frequency_level(comparison) is not none -%}
        {%- do found.append(comparison) -%}
    {%- endfor -%}
    {{ return(found) }}
{%- endmacro %}

{# A pair's match weight: the prior weight, every comparison's level weight and the term frequency adjustments
   (columns <comparison>_tf_adjustment of `p`). #}
{% macro match_weight(p='p', m='m') -%}
    ({{ m }}.prior_weight
    {%- for comparison in idlink.match_comparisons() %}
     + {{ idlink.level_weight(comparison, p, m) }}
    {%- endfor %}
    {%- for comparison in idlink.term_frequency_comparisons() %}
     + coalesce({{ p }}.{{ comparison['name'] }}_tf_adjustment, 0)
    {%- endfor %})
{%- endmacro %}

{# 1 / (1 + 2^-weight), the weight bounded so the power stays finite. #}
{% macro match_probability(weight) -%}
    1.0 / (1.0 + power(2.0, -least(greatest({{ weight }}, -200), 200)))
{%- endmacro %}

{# The decision for a scored pair: 'link', 'review', or 'none'. #}
{% macro match_decision(probability, veto_reason) -%}
    case
        when {{ probability }} >= {{ var('match_link_probability') }} and {{ veto_reason }} is null then 'link'
        when {{ probability }} >= {{ var('match_review_probability') }} then 'review'
        else 'none'
    end
{%- endmacro %}

{# A table of the match model (`name`: versions, parameters) in var match_model_schema. #}
{% macro match_model_relation(name) -%}
    {{ return(source('match_model', name)) }}
{%- endmacro %}

{# CTE <prefix>decided_pairs: the pairs of `compared_pairs` (macro compared_pair_ctes) worth a decision, in the
   columns int_link_candidates keeps (and the sides' row keys): those a rule settles, and the others scored at
   least var match_review_probability. Reads the CTEs model_parameters and <comparison>_frequencies. One pass over
   the compared pairs: a settled pair passes through without a score. #}
{% macro decided_pair_ctes(prefix, compared_pairs) -%}
{{ prefix }}scored_pairs as (
    select
        s.*,
        {{ idlink.match_probability('s.match_weight') }} as match_probability
    from (
        select
            t.*,
            m.model_version,
            case when t.settled_rule is null then {{ idlink.match_weight('t', 'm') }} end as match_weight
        from (
            select
                p.*
                {%- for comparison in idlink.term_frequency_comparisons() %},
                {{ idlink.term_frequency_adjustment(comparison, 'p', 'm') }} as {{ comparison['name'] }}_tf_adjustment
                {%- endfor %}
            from {{ compared_pairs }} as p
            cross join model_parameters as m
            {{- idlink.term_frequency_joins('p') }}
        ) as t
        cross join model_parameters as m
    ) as s
),

{{ prefix }}decided_pairs as (
    select
        identity_row, contact_row,
        identity_provider, identity_id, crm, contact_id,
        coalesce(settled_rule, 'match_model') as match_rule,
        case settled_rule
            {%- for rule in idlink.deterministic_rule_ranks() %}
            when '{{ rule["name"] }}' then {{ rule['rank'] }}
            {%- endfor %}
            else {{ idlink.model_rank(idlink.match_decision('match_probability', 'veto_reason')) }}
        end as rule_rank,
        case settled_rule
            {%- for rule in idlink.deterministic_rule_ranks() %}
            when '{{ rule["name"] }}' then cast({{ rule['confidence'] }} as double precision)
            {%- endfor %}
            else match_probability
        end as match_confidence,
        match_weight,
        case when settled_rule is null then {{ idlink.match_decision('match_probability', 'veto_reason') }} else 'link' end as decision,
        case when settled_rule is null then veto_reason end as rejected_reason,
        case when settled_rule is null then model_version end as model_version,
        {{ idlink.pair_context() | map(attribute='name') | join(', ') }},
        {%- for comparison in idlink.match_comparisons() %}
        case when settled_rule is null then {{ comparison['name'] }}_level end as {{ comparison['name'] }}_level,
        {%- endfor %}
        {%- for comparison in idlink.term_frequency_comparisons() %}
        {{ comparison['name'] }}_tf_adjustment{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ prefix }}scored_pairs
    where settled_rule is not null or match_probability >= {{ var('match_review_probability') }}
)
{%- endmacro %}

{# The columns of int_link_candidates, as decided_pair_ctes names them. #}
{% macro candidate_columns() -%}
    {%- set columns = ['identity_provider', 'identity_id', 'crm', 'contact_id', 'match_rule', 'rule_rank',
                       'match_confidence', 'match_weight', 'decision', 'rejected_reason', 'model_version']
                      + (idlink.pair_context() | map(attribute='name') | list) -%}
    {%- for comparison in idlink.match_comparisons() -%}{%- do columns.append(comparison['name'] ~ '_level') -%}{%- endfor -%}
    {%- for comparison in idlink.term_frequency_comparisons() -%}
        {%- do columns.append(comparison['name'] ~ '_tf_adjustment') -%}
    {%- endfor -%}
    {{ return(columns) }}
{%- endmacro %}
