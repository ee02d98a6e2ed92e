{{ config(materialized='view') }}
-- What each level of each comparison is worth in each trained model version: the dimension link_scores' levels
-- read as (name, weight). Position 0 is the prior (the log2 odds that two records drawn at random are one
-- person), then the comparisons in the order var match_comparisons lists them, each with its level 0 (missing:
-- counts nothing) and the levels training estimated. A view over match_model.
with

versions as (
    select version, prior_weight from {{ source('match_model', 'versions') }}
),

parameters as (
    select version, comparison, level, level_name, m, u, match_weight from {{ source('match_model', 'parameters') }}
),

comparisons as (
    {%- for comparison in idlink.match_comparisons() %}
    select {{ loop.index }} as position, '{{ comparison['name'] }}' as comparison
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

levels as (
    select v.version, 0 as position, 'prior' as comparison, cast(null as integer) as level,
        cast(null as {{ dbt.type_string() }}) as level_name, cast(null as double precision) as m,
        cast(null as double precision) as u, v.prior_weight as level_weight
    from versions as v
    union all
    select v.version, c.position, c.comparison, 0, 'missing', cast(null as double precision),
        cast(null as double precision), 0
    from versions as v
    cross join comparisons as c
    union all
    select p.version, c.position, p.comparison, p.level, p.level_name, p.m, p.u, p.match_weight
    from parameters as p
    inner join comparisons as c on c.comparison = p.comparison
),

final as (
    select
        cast(version as integer) as model_version,
        cast(position as integer) as position,
        cast(comparison as {{ dbt.type_string() }}) as comparison,
        cast(level as integer) as level,
        cast(level_name as {{ dbt.type_string() }}) as level_name,
        cast(m as double precision) as m,
        cast(u as double precision) as u,
        cast(level_weight as double precision) as level_weight
    from levels
)

select * from final
