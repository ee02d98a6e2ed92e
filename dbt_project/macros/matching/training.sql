{# Training the match model from the warehouse's own data, without labels:

     dbt run-operation train_match_model

   1. u (how often two records of different people are at each level): the level shares among random pairs, every
      one of var match_training.random_records identities (drawn by a hash of their key, macro draw_order, so the
      same data gives the same draw on every engine) with as many contacts. A level no random pair reaches counts as reached once (u at most about one
      in that many pairs).
   2. m (how often two records of one person are at each level): expectation-maximisation over the pairs each
      blocking key finds for a sample of identities (var match_training.sample_identities, drawn like the random
      pairs' identities; their pairs with every contact), over the distinct combinations of levels with their
      counts (not pair by pair), with the comparisons that key's own columns decide held out (every
      pair a key finds agrees on them, so they say nothing about that key's pairs). Each key's EM learns m, u and
      its share of matches from its own pairs; started from the pairs the deterministic tier settles (near certain
      matches), or from a generic start where there are too few of them; m of a level is then the matches all
      keys estimate at that level over all they estimate for that comparison; a level no estimated match reaches
      counts as reached once.
   3. The prior (the probability that two records drawn at random are one person): the expected matches among the
      pairs no deterministic rule settles, by EM with m and u fixed, over all identity x contact pairs (of the
      sampled identities).

   Each run adds a version to <match_model_schema>.versions (with its convergence and the counts it was trained
   on) and its levels to <match_model_schema>.parameters; scratch tables training_* stay for inspection (counts
   and levels only, no personal data). The link build applies the latest version trained for the current
   comparisons (macro model_parameter_ctes); a first build without one trains it (macro ensure_match_model). #}

{% macro train_match_model() -%}
    {%- set started = modules.datetime.datetime.now() -%}
    {%- set settings = var('match_training') -%}
    {%- for statement in idlink.create_match_model_tables().split(';') -%}{%- do run_query(statement) -%}{%- endfor -%}
    {%- do idlink.training_table('training_pairs', idlink.training_pairs_sql()) -%}
    {%- do idlink.training_table('training_random_pairs', idlink.training_random_pairs_sql()) -%}
    {%- do idlink.training_table('training_u', idlink.training_u_sql()) -%}
    {%- do idlink.training_table('training_patterns', idlink.training_patterns_sql()) -%}
    {%- do idlink.training_table('training_pattern_levels', idlink.training_pattern_levels_sql()) -%}
    {%- do idlink.training_table('training_seed', idlink.training_seed_sql()) -%}
    {%- set em = idlink.fit_match_parameters() -%}
    {%- set prior = idlink.estimate_prior() -%}
    {%- set version = idlink.record_version(em, prior, started) -%}
    {{ log('match model version ' ~ version ~ ': EM ' ~ ('converged' if em['converged'] else 'stopped') ~ ' after '
           ~ em['iterations'] ~ ' iterations (largest last change ' ~ em['change'] ~ '), prior ' ~ prior['prior'], info=true) }}
    {{ return(version) }}
{%- endmacro %}

{# Steps 2 of training, from the tables of step 1 (training_patterns, training_pattern_levels, training_seed,
   training_u): EM per key, then every level's m, u and weight in training_levels. Returns what run_em returns.
   (`dbt run-operation fit_match_parameters` refits from tables left by a training run, or written by a test.) #}
{% macro fit_match_parameters() -%}
    {%- set em = idlink.run_em('training_patterns', 'training_pattern_levels', 'training_seed', 'training_u') -%}
    {%- do idlink.training_table('training_m', idlink.training_combined_m_sql()) -%}
    {%- do idlink.training_table('training_levels', idlink.training_levels_sql()) -%}
    {{ log('EM ' ~ ('converged' if em['converged'] else 'stopped') ~ ' after ' ~ em['iterations'] ~ ' iterations', info=true) }}
    {{ return(em) }}
{%- endmacro %}

{# Used as the candidate model's pre-hook: trains a first version when none fits the current comparisons (an empty
   warehouse, or comparisons just changed), so a first build links with a model learned from its own data. #}
{% macro ensure_match_model() -%}
    {%- if execute and var('match_model_version') is none -%}
        {%- set found = run_query("select count(*) from " ~ idlink.match_model_relation('versions')
                                  ~ " where comparisons_fingerprint = '" ~ idlink.comparisons_fingerprint() ~ "'") -%}
        {%- if found.columns[0].values()[0] == 0 -%}
            {{ log('no match model trained for these comparisons yet: training one first', info=true) }}
            {%- do idlink.train_match_model() -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{# The tables training writes; run at the start of every dbt invocation too, so the build can always read them. #}
{% macro create_match_model_tables() -%}
    {%- set schema = var('match_model_schema') -%}
    create schema if not exists {{ schema }};
    create table if not exists {{ schema }}.versions (
        version integer,
        trained_at {{ dbt.type_timestamp() }},
        comparisons_fingerprint {{ dbt.type_string() }},
        prior double precision,
        prior_weight double precision,
        iterations integer,
        converged boolean,
        max_change double precision,
        identities bigint,
        contacts bigint,
        random_pairs bigint,
        training_pairs bigint,
        settled_pairs bigint,
        estimated_matches double precision,
        seeded_from_settled_pairs boolean,
        training_keys integer,
        usable_training_keys integer,
        training_seconds double precision
    );
    alter table {{ schema }}.versions add column if not exists training_identities bigint;
    create table if not exists {{ schema }}.parameters (
        version integer,
        comparison {{ dbt.type_string() }},
        level integer,
        level_name {{ dbt.type_string() }},
        m double precision,
        u double precision,
        match_weight double precision,
        estimated_matches double precision
    )
{%- endmacro %}

{# (Re)creates the scratch table `name` in the match model schema as `sql`. #}
{% macro training_table(name, sql) -%}
    {%- set relation = var('match_model_schema') ~ '.' ~ name -%}
    {%- do run_query('drop table if exists ' ~ relation) -%}
    {%- do run_query('create table ' ~ relation ~ ' as ' ~ sql) -%}
{%- endmacro %}

{% macro training_relation(name) -%}
    {{ return(var('match_model_schema') ~ '.' ~ name) }}
{%- endmacro %}

{# Every comparison's level, the blocked_by_<n> flags and the deterministic verdict of every candidate pair of the
   identities training draws (var match_training.sample_identities, by the hash of their key like the random
   pairs; every identity when there are fewer): each of their pairs with any contact, so the sample's pairs are
   distributed like all candidate pairs, and comparing them costs a fraction of comparing all. #}
{% macro training_pairs_sql() -%}
with
{{ idlink.side_ctes(ref('int_identities'), ref('int_contacts'), materialized=true,
                    identity_sample=var('match_training')['sample_identities']) }},
{{ idlink.paired_rows_ctes('', 'identity_side', 'contact_side', idlink.blocking_keys(), key_flags=true) }},
{{ idlink.compared_pair_ctes('', 'paired_rows', all_levels=true) }}
select
    {%- for comparison in idlink.match_comparisons() %}
    {{ comparison['name'] }}_level,
    {%- endfor %}
    {%- for key in idlink.training_keys() %}
    blocked_by_{{ loop.index }},
    {%- endfor %}
    settled_rule
from compared_pairs
{%- endmacro %}

{# Every comparison's level of the random pairs. #}
{% macro training_random_pairs_sql() -%}
    {%- set records = var('match_training')['random_records'] -%}
with
{{ idlink.side_ctes(ref('int_identities'), ref('int_contacts')) }},
{{ idlink.paired_rows_ctes('', 'identity_side', 'contact_side', [], random_records=records) }},
{{ idlink.compared_pair_ctes('', 'paired_rows', all_levels=true) }}
select
    {%- for comparison in idlink.match_comparisons() %}
    {{ comparison['name'] }}_level{{ ',' if not loop.last }}
    {%- endfor %}
from compared_pairs
{%- endmacro %}

{# u of every level: its share among the random pairs where the comparison is not missing, as if a level no pair
   reaches were reached once (so u is at most about one in that many pairs, never 0); random_pairs is how many
   reached it. #}
{% macro training_u_sql() -%}
    {%- set pairs = idlink.training_relation('training_random_pairs') %}
select all_levels.comparison, all_levels.level, coalesce(counted.pairs, 0) as random_pairs,
    cast(greatest(coalesce(counted.pairs, 0), 1) as double precision)
        / greatest(sum(coalesce(counted.pairs, 0)) over (partition by all_levels.comparison), 1) as u
from ({{ idlink.all_levels_sql() }}) as all_levels
left join (
    {%- for comparison in idlink.match_comparisons() %}
    select '{{ comparison["name"] }}' as comparison, {{ comparison['name'] }}_level as level, count(*) as pairs
    from {{ pairs }}
    where {{ comparison['name'] }}_level > 0
    group by {{ comparison['name'] }}_level
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
) as counted on counted.comparison = all_levels.comparison and counted.level = all_levels.level
{%- endmacro %}

{# Every (comparison, level, level_name) a pair can be at, 'missing' aside. #}
{% macro all_levels_sql() -%}
    {%- set rows = [] -%}
    {%- for comparison in idlink.match_comparisons() -%}
        {%- set names = idlink.comparison_level_names(comparison) -%}
        {%- for level in range(1, names | length) -%}
            {%- do rows.append("select '" ~ comparison['name'] ~ "' as comparison, " ~ level ~ " as level, '"
                               ~ names[level] ~ "' as level_name") -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ rows | join('\n    union all ') }}
{%- endmacro %}

{# One row per distinct combination of levels among the pairs of each blocking key (key_id, pattern_id, pairs,
   every <comparison>_level; 0 for the comparisons the key holds out, so they do not split patterns). #}
{% macro training_patterns_sql() -%}
    {%- set pairs = idlink.training_relation('training_pairs') -%}
    {%- set levels = idlink.match_comparisons() | map(attribute='name') | list %}
select
    row_number() over (order by key_id {%- for name in levels %}, {{ name }}_level{% endfor %}) as pattern_id,
    patterns.*
from (
    {%- for key in idlink.training_keys() %}
    {%- set held_out = idlink.held_out_comparisons(key) %}
    select key_id, {% for name in levels %}{{ name }}_level, {% endfor %}count(*) as pairs
    from (
        select {{ loop.index }} as key_id
            {%- for name in levels %}, {{ '0' if name in held_out else name ~ '_level' }} as {{ name }}_level{% endfor %}
        from {{ pairs }}
        where blocked_by_{{ loop.index }}
    ) as key_pairs
    group by key_id{% for name in levels %}, {{ name }}_level{% endfor %}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
) as patterns
{%- endmacro %}

{# The patterns in long form (key_id, pattern_id, comparison, level), for the comparisons each key does not hold
   out and the levels other than 'missing'. #}
{% macro training_pattern_levels_sql() -%}
    {%- set patterns = idlink.training_relation('training_patterns') -%}
    {%- set parts = [] -%}
    {%- for key in idlink.training_keys() -%}
        {%- set key_id = loop.index -%}
        {%- set held_out = idlink.held_out_comparisons(key) -%}
        {%- for comparison in idlink.match_comparisons() if comparison['name'] not in held_out -%}
            {%- do parts.append("select key_id, pattern_id, '" ~ comparison['name'] ~ "' as comparison, "
                                ~ comparison['name'] ~ "_level as level from " ~ patterns ~ " where key_id = "
                                ~ key_id ~ " and " ~ comparison['name'] ~ "_level > 0") -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ parts | join('\nunion all\n') }}
{%- endmacro %}

{# The comparisons a blocking key decides: those reading a column the key compares, or a column the key's column
   is derived from (a phonetic key or an initial stands for its name). #}
{% macro held_out_comparisons(key) -%}
    {%- set sources = idlink.blocking_column_sources() -%}
    {%- set key_columns = [] -%}
    {%- for entry in key -%}
        {%- for pair in idlink.blocking_column_pairs(entry) -%}
            {%- for name in pair -%}
                {%- for column in [name] + sources.get(name, []) if column not in key_columns -%}
                    {%- do key_columns.append(column) -%}
                {%- endfor -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- set held_out = [] -%}
    {%- for comparison in idlink.match_comparisons() -%}
        {%- if idlink.comparison_reads(comparison, others=false) | select('in', key_columns) | list | length > 0 -%}{%- do held_out.append(comparison['name']) -%}{%- endif -%}
    {%- endfor -%}
    {{ return(held_out) }}
{%- endmacro %}

{# Blocking columns derived from the columns comparisons read. #}
{% macro blocking_column_sources() -%}
    {{ return({
        'family_phonetic': ['family_name_key'], 'family_initial': ['family_name_key'],
        'given_phonetic': ['given_name_key'], 'given_initial': ['given_name_key'],
        'street_key': ['street_name', 'street_number'], 'street_phonetic': ['street_name'],
        'city_phonetic': ['city_key'],
    }) }}
{%- endmacro %}

{# The level shares of pairs a deterministic rule settles (near-certain matches), per comparison the rule does not
   decide itself: EM starts from them (macro run_em). Empty when too few pairs are settled to tell. #}
{% macro training_seed_sql() -%}
    {%- set pairs = idlink.training_relation('training_pairs') -%}
    {%- set parts = [] -%}
    {%- for rule in var('deterministic_rules') -%}
        {%- set held_out = [] -%}
        {%- for key in rule['blocking'] -%}
            {%- for name in idlink.held_out_comparisons(key) if name not in held_out -%}{%- do held_out.append(name) -%}{%- endfor -%}
        {%- endfor -%}
        {%- for comparison in idlink.match_comparisons() if comparison['name'] not in held_out -%}
            {%- do parts.append("select '" ~ comparison['name'] ~ "' as comparison, " ~ comparison['name']
                                ~ "_level as level from " ~ pairs ~ " where settled_rule = '" ~ rule['name'] ~ "' and "
                                ~ comparison['name'] ~ "_level > 0") -%}
        {%- endfor -%}
    {%- endfor %}
select all_levels.comparison, all_levels.level,
    cast(coalesce(counted.pairs, 0) + 1 as double precision)
        / sum(coalesce(counted.pairs, 0) + 1) over (partition by all_levels.comparison) as m
from ({{ idlink.all_levels_sql() }}) as all_levels
left join (
    select comparison, level, count(*) as pairs
    from ({{ parts | join('\nunion all\n') if parts else 'select null as comparison, null as level where false' }}) as settled
    group by comparison, level
) as counted on counted.comparison = all_levels.comparison and counted.level = all_levels.level
where (select count(*) from {{ pairs }} where settled_rule is not null) >= {{ var('match_training')['min_seed_pairs'] }}
{%- endmacro %}

{# Every level with its m, u and match weight log2(m / u). Like u, m counts a level no estimated match reaches as
   reached once (at most about one in that many matches): a level matches never reach but chance often does is
   strong evidence against. A level neither reaches has weight 0: nothing is known of it. #}
{% macro training_levels_sql() -%}
select l.comparison, l.level, l.level_name, coalesce(m.matches, 0) / nullif(t.matches, 0) as m, u.u,
    case when coalesce(m.matches, 0) < 1 and u.random_pairs = 0 then 0
         when t.matches > 0 then ln((greatest(coalesce(m.matches, 0), 1) / t.matches) / u.u) / ln(2)
         else 0 end as match_weight,
    coalesce(m.matches, 0) as estimated_matches
from ({{ idlink.all_levels_sql() }}) as l
inner join {{ idlink.training_relation('training_u') }} as u on u.comparison = l.comparison and u.level = l.level
left join {{ idlink.training_relation('training_m') }} as m on m.comparison = l.comparison and m.level = l.level
left join (
    select comparison, sum(matches) as matches from {{ idlink.training_relation('training_m') }} group by comparison
) as t on t.comparison = l.comparison
{%- endmacro %}

{# The prior: the share of all identity x contact pairs that are matches no deterministic rule settles, found as
   the fixed point of (expected matches among the unsettled candidate pairs) / (all pairs), with the levels'
   weights fixed. The candidate pairs are those of the drawn identities (macro training_pairs_sql), so all pairs
   are those identities' with every contact. Returns prior, iterations, the expected matches (scaled to all
   identities) and the counts. #}
{% macro estimate_prior() -%}
    {%- set settings = var('match_training') -%}
    {%- set counts = run_query('select (select count(*) from ' ~ ref('int_identities') ~ '), (select count(*) from '
                               ~ ref('int_contacts') ~ ' where not is_deleted)') -%}
    {%- set sampled = [counts.columns[0].values()[0], settings['sample_identities']] | min -%}
    {%- set all_pairs = sampled * counts.columns[1].values()[0] -%}
    {%- do idlink.training_table('training_candidate_weights', idlink.candidate_weights_sql()) -%}
    {%- set ns = namespace(prior=1.0 / ([all_pairs, 1] | max), matches=0, iterations=0) -%}
    {%- for iteration in range(settings['max_iterations']) -%}
        {%- set matches = run_query('select coalesce(sum(pairs / (1.0 + power(2.0, -least(greatest(weight, -200), 200)) * '
                                    ~ (1.0 - ns.prior) / ns.prior ~ ')), 0) from '
                                    ~ idlink.training_relation('training_candidate_weights')).columns[0].values()[0] | float -%}
        {%- set prior = [[matches / ([all_pairs, 1] | max), 1e-12] | max, 0.5] | min -%}
        {%- set ns.iterations = iteration + 1 -%}
        {%- set change = (prior - ns.prior) | abs / ns.prior -%}
        {%- set ns.prior = prior -%}
        {%- set ns.matches = matches -%}
        {%- if change <= settings['tolerance'] | float -%}{%- break -%}{%- endif -%}
    {%- endfor -%}
    {{ return({'prior': ns.prior, 'iterations': ns.iterations,
               'matches': ns.matches * counts.columns[0].values()[0] / ([sampled, 1] | max),
               'identities': counts.columns[0].values()[0], 'contacts': counts.columns[1].values()[0],
               'sampled_identities': sampled}) }}
{%- endmacro %}

{# The unsettled candidate pairs by combination of levels, with the summed level weights (no prior). #}
{% macro candidate_weights_sql() -%}
    {%- set levels = idlink.match_comparisons() | map(attribute='name') | list -%}
    {%- set weights = idlink.training_relation('training_levels') %}
select patterns.pairs, 0
    {%- for name in levels %}
    + coalesce((select w.match_weight from {{ weights }} as w
                where w.comparison = '{{ name }}' and w.level = patterns.{{ name }}_level), 0)
    {%- endfor %} as weight
from (
    select {% for name in levels %}{{ name }}_level, {% endfor %}count(*) as pairs
    from {{ idlink.training_relation('training_pairs') }}
    where settled_rule is null
    group by {% for name in levels %}{{ name }}_level{{ ', ' if not loop.last }}{% endfor %}
) as patterns
{%- endmacro %}

{# Adds the new version and its parameters; returns its number. #}
{% macro record_version(em, prior, started) -%}
    {%- set schema = var('match_model_schema') -%}
    {%- set version = run_query('select coalesce(max(version), 0) + 1 from ' ~ schema ~ '.versions').columns[0].values()[0] -%}
    {%- set pairs = run_query('select count(*), count(settled_rule) from ' ~ idlink.training_relation('training_pairs')) -%}
    {%- set seconds = (modules.datetime.datetime.now() - started).total_seconds() -%}
    {%- set sql -%}
    insert into {{ schema }}.parameters (version, comparison, level, level_name, m, u, match_weight, estimated_matches)
    select {{ version }}, comparison, level, level_name, m, u, match_weight, estimated_matches
    from {{ idlink.training_relation('training_levels') }}
    {%- endset -%}
    {%- do run_query(sql) -%}
    {%- set sql -%}
    insert into {{ schema }}.versions (version, trained_at, comparisons_fingerprint, prior, prior_weight, iterations,
        converged, max_change, identities, contacts, random_pairs, training_pairs, settled_pairs, estimated_matches,
        seeded_from_settled_pairs, training_keys, usable_training_keys, training_seconds, training_identities)
    select {{ version }}, {{ dbt.current_timestamp() }}, '{{ idlink.comparisons_fingerprint() }}', {{ prior['prior'] }},
        ln({{ prior['prior'] }} / (1.0 - {{ prior['prior'] }})) / ln(2), {{ em['iterations'] }},
        {{ 'true' if em['converged'] else 'false' }}, {{ em['change'] if em['change'] is not none else 'null' }},
        {{ prior['identities'] }}, {{ prior['contacts'] }},
        (select count(*) from {{ idlink.training_relation('training_random_pairs') }}),
        {{ pairs.columns[0].values()[0] }}, {{ pairs.columns[1].values()[0] }}, {{ prior['matches'] }},
        {{ 'true' if em['seeded'] else 'false' }},
        (select count(distinct key_id) from {{ idlink.training_relation('training_estimates') }}),
        (select count(*) from ({{ idlink.usable_keys_sql() }}) as usable), {{ seconds }}, {{ prior['sampled_identities'] }}
    {%- endset -%}
    {%- do run_query(sql) -%}
    {{ return(version) }}
{%- endmacro %}
