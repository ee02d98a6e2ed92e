{{ config(materialized='view') }}
-- What each comparison contributed to a pair the match model scored (a link, a review item, or a candidate another
-- decision set aside): a waterfall from the prior to the pair's match weight, one row per comparison and one for
-- the prior. A deterministic link (carried id, the same valid email) has no score and no rows here. A view: each
-- pair keeps its levels in int_link_candidates, the weights stay with the model version that scored it.
with

scored as (
    select * from {{ ref('int_link_candidates') }}
    where model_version is not null
),

versions as (
    select version, prior_weight from {{ source('match_model', 'versions') }}
),

parameters as (
    select version, comparison, level, level_name, match_weight from {{ source('match_model', 'parameters') }}
),

contributions as (
    select
        s.identity_provider, s.identity_id, s.crm, s.contact_id, s.model_version, s.decision,
        s.match_confidence as match_probability, s.match_weight,
        0 as position,
        'prior' as comparison,
        cast(null as integer) as level,
        cast(null as {{ dbt.type_string() }}) as level_name,
        v.prior_weight as level_weight,
        cast(null as double precision) as term_frequency_adjustment
    from scored as s
    inner join versions as v on v.version = s.model_version
    {%- for comparison in idlink.match_comparisons() %}
    {%- set name = comparison['name'] %}
    union all
    select
        s.identity_provider, s.identity_id, s.crm, s.contact_id, s.model_version, s.decision,
        s.match_confidence, s.match_weight,
        {{ loop.index }},
        '{{ name }}',
        s.{{ name }}_level,
        coalesce(p.level_name, 'missing'),
        coalesce(p.match_weight, 0),
        {% if comparison in idlink.term_frequency_comparisons() -%}
        s.{{ name }}_tf_adjustment
        {%- else -%}
        cast(null as double precision)
        {%- endif %}
    from scored as s
    left join parameters as p
        on p.version = s.model_version and p.comparison = '{{ name }}' and p.level = s.{{ name }}_level
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
    from contributions
)

select * from final
