{# Why the match model scored a pair as it did, in two shapes written from the same two relations:

     scored pairs       one row per pair the model scored: its keys, decision, probability and weight, and each
                        comparison's level as a small integer (<comparison>_level) with, for a comparison with
                        term_frequency, what its value's rarity added (<comparison>_tf_adjustment)
     comparison_levels  one row per model version, comparison and level: its name and weight (the prior as
                        position 0)

   and link_evidence re-expands them into one row per pair and comparison (a waterfall from the prior to the
   pair's match weight). The warehouse keeps the long form as a view (marts.link_evidence); the published
   databases copy the two compact relations and create the same view over them (links.link_evidence), so a
   publication writes one row per pair instead of one per comparison. #}

{# The pairs of `candidates` (int_link_candidates) that the match model scored, one row each. #}
{% macro scored_pairs(candidates) -%}
    select
        identity_provider,
        identity_id,
        crm,
        contact_id,
        model_version,
        decision,
        match_confidence as match_probability,
        match_weight,
        {%- for comparison in idlink.match_comparisons() %}
        cast({{ comparison['name'] }}_level as smallint) as {{ comparison['name'] }}_level,
        {%- endfor %}
        {%- for comparison in idlink.term_frequency_comparisons() %}
        {{ comparison['name'] }}_tf_adjustment{% if not loop.last %},{% endif %}
        {%- endfor %}
    from {{ candidates }}
    where model_version is not null
{%- endmacro %}

{# One row per pair of the query `scored_pairs` (macro scored_pairs) and comparison, plus one for the prior, with
   the level's name and weight from the query `comparison_levels` (model comparison_levels). A level a version
   has no parameter for (0, missing) counts nothing. `carried` columns of the scored pairs are passed through
   (the published view keeps the run its rows came from). #}
{% macro link_evidence_rows(scored_pairs, comparison_levels, carried=[]) -%}
with

scored as (
    {{ scored_pairs }}
),

levels as (
    {{ comparison_levels }}
),

contributions as (
    select
        s.identity_provider, s.identity_id, s.crm, s.contact_id, s.model_version, s.decision,
        s.match_probability, s.match_weight,
        0 as position,
        'prior' as comparison,
        cast(null as integer) as level,
        cast(null as {{ dbt.type_string() }}) as level_name,
        l.level_weight,
        cast(null as double precision) as term_frequency_adjustment
        {%- for column in carried %}, s.{{ column }}{% endfor %}
    from scored as s
    inner join levels as l on l.model_version = s.model_version and l.position = 0
    {%- for comparison in idlink.match_comparisons() %}
    {%- set name = comparison['name'] %}
    union all
    select
        s.identity_provider, s.identity_id, s.crm, s.contact_id, s.model_version, s.decision,
        s.match_probability, s.match_weight,
        {{ loop.index }},
        '{{ name }}',
        s.{{ name }}_level,
        coalesce(l.level_name, 'missing'),
        coalesce(l.level_weight, 0),
        {% if comparison in idlink.term_frequency_comparisons() -%}
        s.{{ name }}_tf_adjustment
        {%- else -%}
        cast(null as double precision)
        {%- endif %}
        {%- for column in carried %}, s.{{ column }}{% endfor %}
    from scored as s
    left join levels as l
        on l.model_version = s.model_version and l.comparison = '{{ name }}' and l.level = s.{{ name }}_level
    {%- endfor %}
),

final as (
    select
        cast(identity_provider as {{ dbt.type_string() }}) as identity_provider,
        cast(identity_id as {{ dbt.type_string() }}) as identity_id,
        cast(crm as {{ dbt.type_string() }}) as crm,
        cast(contact_id as {{ dbt.type_string() }}) as contact_id,
        cast(model_version as integer) as model_version,
        cast(decision as {{ dbt.type_string() }}) as decision,
        cast(match_probability as double precision) as match_probability,
        cast(match_weight as double precision) as match_weight,
        cast(position as integer) as position,
        cast(comparison as {{ dbt.type_string() }}) as comparison,
        cast(level as integer) as level,
        cast(level_name as {{ dbt.type_string() }}) as level_name,
        cast(level_weight as double precision) as level_weight,
        cast(term_frequency_adjustment as double precision) as term_frequency_adjustment,
        cast(level_weight + coalesce(term_frequency_adjustment, 0) as double precision) as weight
        {%- for column in carried %},
        {{ column }}
        {%- endfor %}
    from contributions
)

select * from final
{%- endmacro %}
