{# Expectation-maximisation (training, step 2): per blocking key, the two groups its pairs fall into, matches and
   non-matches, with how often each is at each level (m and u) and the key's share of matches, learned from the
   level patterns alone. The state of every key is one table, training_estimates: (key_id, comparison, level, m, u,
   matches: the expected matches at the level) for the levels the key sees, and one row per key with level 0
   holding its match share in m (and its expected matches). #}

{# Runs EM from `seed` (m; halving with each weaker level when empty) and `u` until the m training keeps (macro
   training_combined_m_sql: every usable key's expected matches per level) moved by no more than var
   match_training.tolerance in the last iteration, or max_iterations. Judged on that, not on every key's own m and
   u: in a key whose pairs are nearly all one person (carried ids) the few others leave u undetermined, and it
   drifts along a flat likelihood for hundreds of iterations while the m it contributes stays put. A round is one
   SQL statement of several iterations (macro em_round_sql): each statement costs more than the iterations on
   these small tables (an engine without materialized CTEs runs one per statement, as its plan would repeat every
   earlier iteration). Leaves the last posteriors in training_posteriors; returns iterations, converged, the last
   iteration's largest change of m and whether the start came from settled pairs. #}
{% macro run_em(patterns, pattern_levels, seed, u) -%}
    {%- set settings = var('match_training') -%}
    {%- set per_round = 25 if idlink.materialized_cte() | trim else 1 -%}
    {%- set p = idlink.training_relation(patterns) -%}
    {%- set pl = idlink.training_relation(pattern_levels) -%}
    {%- set seeded = run_query('select count(*) from ' ~ idlink.training_relation(seed)).columns[0].values()[0] > 0 -%}
    {%- do idlink.training_table('training_estimates', idlink.em_start_sql(p, pl, seed, u)) -%}
    {%- set ns = namespace(iterations=0, change=none, converged=false) -%}
    {%- for round in range((settings['max_iterations'] + per_round - 1) // per_round) -%}
        {%- do idlink.training_table('training_estimates_next', idlink.em_round_sql(p, pl, per_round)) -%}
        {%- set ns.change = run_query(idlink.em_change_sql()).columns[0].values()[0] | float -%}
        {%- do idlink.training_table('training_estimates', 'select key_id, comparison, level, m, u, matches from ' ~ idlink.training_relation('training_estimates_next')) -%}
        {%- set ns.iterations = ns.iterations + per_round -%}
        {%- if ns.change <= settings['tolerance'] | float -%}
            {%- set ns.converged = true -%}
            {%- break -%}
        {%- endif -%}
    {%- endfor -%}
    {%- do idlink.training_table('training_posteriors',
        'with ' ~ idlink.em_expectation_cte('posteriors', p, pl, idlink.training_relation('training_estimates'))
        ~ ' select * from posteriors') -%}
    {{ return({'iterations': ns.iterations, 'converged': ns.converged, 'change': ns.change, 'seeded': seeded}) }}
{%- endmacro %}

{# Start values per key, comparison and level: m from the seed (or halving with each weaker level), u from the
   random pairs; every key's match share starts at one half. #}
{% macro em_start_sql(patterns, pattern_levels, seed, u) -%}
select keys.key_id, l.comparison, l.level,
    coalesce(s.m, power(0.5, l.level - 1) / sum(power(0.5, l.level - 1)) over (partition by keys.key_id, l.comparison)) as m,
    u.u,
    cast(null as double precision) as matches
from (select distinct key_id, comparison from {{ pattern_levels }}) as keys
inner join ({{ idlink.all_levels_sql() }}) as l on l.comparison = keys.comparison
inner join {{ idlink.training_relation(u) }} as u on u.comparison = l.comparison and u.level = l.level
left join {{ idlink.training_relation(seed) }} as s on s.comparison = l.comparison and s.level = l.level
union all
select distinct key_id, '' as comparison, 0 as level, 0.5 as m, 0.5 as u, cast(null as double precision) as matches
from {{ patterns }}
{%- endmacro %}

{# `iterations` EM iterations from training_estimates, as one statement: the estimates after the last, with the
   expected matches of the iteration before it (previous_matches) to judge convergence by. #}
{% macro em_round_sql(patterns, pattern_levels, iterations) -%}
with
{%- for n in range(1, iterations + 1) %}
{%- set estimates = idlink.training_relation('training_estimates') if n == 1 else 'estimates_' ~ (n - 1) %}
{{ idlink.em_expectation_cte('posteriors_' ~ n, patterns, pattern_levels, estimates) }},
{{ idlink.em_maximisation_cte('estimates_' ~ n, pattern_levels, 'posteriors_' ~ n) }}{{ ',' if not loop.last }}
{%- endfor %}
{%- set before = idlink.training_relation('training_estimates') if iterations == 1 else 'estimates_' ~ (iterations - 1) %}
select e.key_id, e.comparison, e.level, e.m, e.u, e.matches, b.matches as previous_matches
from estimates_{{ iterations }} as e
left join {{ before }} as b on b.key_id = e.key_id and b.comparison = e.comparison and b.level = e.level
{%- endmacro %}

{# E-step, as CTE `name`: each pattern's probability of being a match, from its key's match share and the levels'
   m and u. #}
{% macro em_expectation_cte(name, patterns, pattern_levels, estimates) -%}
{{ name }} as {{ idlink.materialized_cte() }} (
    select p.key_id, p.pattern_id, p.pairs,
        1.0 / (1.0 + exp(least(greatest(
            ln(1.0 - s.m) - ln(s.m) + coalesce(r.log_ratio, 0), -700), 700))) as match_share
    from {{ patterns }} as p
    inner join {{ estimates }} as s on s.key_id = p.key_id and s.level = 0
    left join (
        select pl.key_id, pl.pattern_id, sum(ln(e.u) - ln(e.m)) as log_ratio
        from {{ pattern_levels }} as pl
        inner join {{ estimates }} as e
            on e.key_id = pl.key_id and e.comparison = pl.comparison and e.level = pl.level
        group by pl.key_id, pl.pattern_id
    ) as r on r.key_id = p.key_id and r.pattern_id = p.pattern_id
)
{%- endmacro %}

{# M-step, as CTE `name`: m and u of every level each key sees, from the expected matches and non-matches at that
   level, and each key's share of matches (kept off 0 and 1, where the log odds are infinite). #}
{% macro em_maximisation_cte(name, pattern_levels, posteriors) -%}
{{ name }} as {{ idlink.materialized_cte() }} (
    select key_id, comparison, level,
        greatest(matches / nullif(sum(matches) over (partition by key_id, comparison), 0), 1e-12) as m,
        greatest(non_matches / nullif(sum(non_matches) over (partition by key_id, comparison), 0), 1e-12) as u,
        matches
    from (
        select pl.key_id, pl.comparison, pl.level,
            sum(po.pairs * po.match_share) as matches,
            sum(po.pairs * (1.0 - po.match_share)) as non_matches
        from {{ pattern_levels }} as pl
        inner join {{ posteriors }} as po on po.key_id = pl.key_id and po.pattern_id = pl.pattern_id
        group by pl.key_id, pl.comparison, pl.level
    ) as expected
    union all
    select key_id, '' as comparison, 0 as level, share as m, 1.0 - share as u, matches
    from (
        select key_id, least(greatest(sum(pairs * match_share) / sum(pairs), 1e-9), 1.0 - 1e-9) as share,
            sum(pairs * match_share) as matches
        from {{ posteriors }}
        group by key_id
    ) as shares
)
{%- endmacro %}

{# The largest change in the last iteration of any level's m as training combines it (macro
   training_combined_m_sql, over the keys usable after it); 1 when there is no iteration before to compare with. #}
{% macro em_change_sql() -%}
    {%- set next = idlink.training_relation('training_estimates_next') %}
select coalesce(max(abs(m - previous_m)), 1) as change
from (
    select
        sum(matches) / nullif(sum(sum(matches)) over (partition by comparison), 0) as m,
        sum(previous_matches) / nullif(sum(sum(previous_matches)) over (partition by comparison), 0) as previous_m
    from {{ next }}
    where level > 0 and key_id in ({{ idlink.usable_keys_sql('training_estimates_next') }})
    group by comparison, level
) as combined
{%- endmacro %}

{# m of every level: the matches all usable keys expect at that level over all they expect for the comparison. A key
   is usable when its EM split its pairs into one person and two: its matches agree exactly at least as often as
   its non-matches on every comparison. (A key whose pairs are nearly all one person can split them along another
   line instead, e.g. names entered the wrong way round or not; that key is left out.) #}
{% macro training_combined_m_sql() -%}
select comparison, level, matches, matches / sum(matches) over (partition by comparison) as m
from (
    select pl.comparison, pl.level, sum(po.pairs * po.match_share) as matches
    from {{ idlink.training_relation('training_pattern_levels') }} as pl
    inner join {{ idlink.training_relation('training_posteriors') }} as po
        on po.key_id = pl.key_id and po.pattern_id = pl.pattern_id
    where pl.key_id in ({{ idlink.usable_keys_sql() }})
    group by pl.comparison, pl.level
) as expected
{%- endmacro %}

{# The keys whose EM found matches that agree exactly at least as often as their non-matches on every comparison. #}
{% macro usable_keys_sql(estimates='training_estimates') -%}
    select key_id
    from {{ idlink.training_relation(estimates) }}
    where level > 0
    group by key_id
    having coalesce(min(case when level = 1 then case when m >= u then 1 else 0 end end), 1) = 1
{%- endmacro %}
