{# Comparisons (var match_comparisons): each compares one field (`column`) or a few that belong together
   (`columns`, e.g. postal code and city) and puts the pair at one level, a small integer kept per pair as
   <comparison>_level:

     0            missing: no column of the comparison is present on both sides (counts nothing)
     1 .. n       the configured levels, strongest first; the first that holds
     n + 1        different: none holds

   A level is one condition (`kind` and its settings, macros/matching/comparison_levels.sql) or several that must
   all hold (`all: [...]`); a condition compares the comparison's first column unless it names another `column`.
   What a level is worth (its m and u probabilities, hence its match weight) is learned by training
   (macros/matching/training.sql) and applied by scoring (macros/matching/scoring.sql); nothing here is a
   weight. #}

{% macro match_comparisons() -%}
    {{ return(var('match_comparisons')) }}
{%- endmacro %}

{# The columns a comparison compares (`column`, or `columns`). #}
{% macro comparison_own_columns(comparison) -%}
    {{ return([comparison['column']] if 'column' in comparison else comparison['columns']) }}
{%- endmacro %}

{# Every condition of a comparison's levels, each with the column it compares resolved. #}
{% macro comparison_conditions(comparison) -%}
    {%- set default = idlink.comparison_own_columns(comparison)[0] -%}
    {%- set conditions = [] -%}
    {%- for level in comparison['levels'] -%}
        {%- for condition in level.get('all', [level]) -%}
            {%- set resolved = {} -%}
            {%- do resolved.update(condition) -%}
            {%- do resolved.update({'column': condition.get('column', default)}) -%}
            {%- do conditions.append(resolved) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(conditions) }}
{%- endmacro %}

{# Every column of either side a comparison reads (without `others`: only those it compares like with like, not the
   other column a swapped condition crosses with). #}
{% macro comparison_reads(comparison, others=true) -%}
    {%- set columns = idlink.comparison_own_columns(comparison) | list -%}
    {%- for condition in idlink.comparison_conditions(comparison) -%}
        {%- for name in [condition['column'], condition.get('with') if others else none] if name and name not in columns -%}
            {%- do columns.append(name) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(columns) }}
{%- endmacro %}

{# The names of a comparison's levels by number: 'missing', the configured ones, 'different'. #}
{% macro comparison_level_names(comparison) -%}
    {{ return(['missing'] + (comparison['levels'] | map(attribute='name') | list) + ['different']) }}
{%- endmacro %}

{# The level number of a comparison's level `name`. #}
{% macro comparison_level_number(comparison, name) -%}
    {%- set names = idlink.comparison_level_names(comparison) -%}
    {%- if name not in names -%}
        {{ exceptions.raise_compiler_error("comparison '" ~ comparison['name'] ~ "' has no level '" ~ name ~ "' (levels: " ~ names | join(', ') ~ ")") }}
    {%- endif -%}
    {{ return(names.index(name)) }}
{%- endmacro %}

{% macro comparison_named(name) -%}
    {%- for comparison in idlink.match_comparisons() if comparison['name'] == name -%}
        {{ return(comparison) }}
    {%- endfor -%}
    {{ exceptions.raise_compiler_error("no comparison '" ~ name ~ "' in var match_comparisons") }}
{%- endmacro %}

{# The level a flattened pair row `p` is at for `comparison`. #}
{% macro comparison_level(comparison, p='p') -%}
    {%- set default = idlink.comparison_own_columns(comparison)[0] -%}
    {%- set missing = [] -%}
    {%- for column in idlink.comparison_own_columns(comparison) -%}
        {%- do missing.append('(' ~ p ~ '.' ~ column ~ '_i is null or ' ~ p ~ '.' ~ column ~ '_c is null)') -%}
    {%- endfor -%}
    case
        when {{ missing | join(' and ') }} then 0
        {%- for level in comparison['levels'] %}
        {%- set conditions = [] %}
        {%- for condition in level.get('all', [level]) %}
            {%- do conditions.append(idlink.level_condition(condition, condition.get('column', default), p)) %}
        {%- endfor %}
        when {{ conditions | join(' and ') }} then {{ loop.index }}
        {%- endfor %}
        else {{ comparison['levels'] | length + 1 }}
    end
{%- endmacro %}

{# What the levels of `comparisons` read that costs enough to compute once per pair: the similarity of each column a
   jaro_winkler condition compares (1 for equal values, null when either is missing), as <column>_similarity, over
   a flattened pair row `p`; computed only where `condition` holds, when given. #}
{% macro comparison_features(comparisons, p='p', condition=none) -%}
    {%- set columns = [] -%}
    {%- for comparison in comparisons -%}
        {%- for level in idlink.comparison_conditions(comparison) if level['kind'] == 'jaro_winkler' -%}
            {%- if level['column'] not in columns -%}{%- do columns.append(level['column']) -%}{%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- set features = [] -%}
    {%- for column in columns -%}
        {%- set a = p ~ '.' ~ column ~ '_i' -%}
        {%- set b = p ~ '.' ~ column ~ '_c' -%}
        {%- set expr = 'case when ' ~ a ~ ' = ' ~ b ~ ' then 1.0 else ' ~ idlink.name_similarity(a, b) ~ ' end' -%}
        {%- if condition -%}{%- set expr = 'case when ' ~ condition ~ ' then ' ~ expr ~ ' end' -%}{%- endif -%}
        {%- do features.append(expr ~ ' as ' ~ column ~ '_similarity') -%}
    {%- endfor -%}
    {{ return(features) }}
{%- endmacro %}

{# Columns of either side that the comparisons read. #}
{% macro comparison_columns() -%}
    {%- set columns = [] -%}
    {%- for comparison in idlink.match_comparisons() -%}
        {%- for name in idlink.comparison_reads(comparison) if name not in columns -%}
            {%- do columns.append(name) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(columns) }}
{%- endmacro %}

{# Columns a nickname condition compares (each gets a <column>_nickname flag from the nickname seed). #}
{% macro nickname_columns() -%}
    {%- set columns = [] -%}
    {%- for comparison in idlink.match_comparisons() -%}
        {%- for condition in idlink.comparison_conditions(comparison) if condition['kind'] == 'nickname' -%}
            {%- if condition['column'] not in columns -%}{%- do columns.append(condition['column']) -%}{%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(columns) }}
{%- endmacro %}

{# A fingerprint of the comparisons: parameters learned for other comparisons or levels do not apply. #}
{% macro comparisons_fingerprint() -%}
    {{ return(local_md5(tojson(idlink.match_comparisons()))) }}
{%- endmacro %}
