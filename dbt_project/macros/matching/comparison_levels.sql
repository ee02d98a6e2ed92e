{# Comparison levels, one macro per kind a level of var match_comparisons names (`kind: jaro_winkler` is decided by
   level_jaro_winkler below). Each is a condition on a flattened pair row `p` (macro paired_rows_ctes): `column`
   is the level's column, p.<column>_i the identity's value and p.<column>_c the contact's. A condition that is
   unknown (a value missing on either side) does not hold. What differs between engines (similarity, edit
   distance) goes through the dispatched macros of macros/engine/. #}

{% macro level_condition(level, column, p) -%}
    {%- set kinds = {
        'exact': idlink.level_exact, 'nickname': idlink.level_nickname, 'swapped': idlink.level_swapped,
        'jaro_winkler': idlink.level_jaro_winkler, 'edits': idlink.level_edits, 'prefix': idlink.level_prefix,
    } -%}
    {%- if level['kind'] not in kinds -%}
        {{ exceptions.raise_compiler_error("comparison level kind '" ~ level['kind'] ~ "' is not one of " ~ kinds.keys() | list | join(', ')) }}
    {%- endif -%}
    {{ return(kinds[level['kind']](level, column, p)) }}
{%- endmacro %}

{# The same value. #}
{% macro level_exact(level, column, p) -%}
    {{ p }}.{{ column }}_i = {{ p }}.{{ column }}_c
{%- endmacro %}

{# First names the nickname seed says may stand for the same person ("bill" / "william"). #}
{% macro level_nickname(level, column, p) -%}
    {{ p }}.{{ column }}_nickname
{%- endmacro %}

{# Entered the wrong way round: this column equals the other side's `with`, and the other way round the values are
   at least `at_least` similar (one may carry a typo). #}
{% macro level_swapped(level, column, p) -%}
    {%- set other = level['with'] -%}
    (({{ p }}.{{ column }}_i = {{ p }}.{{ other }}_c
      and {{ idlink.name_similarity(p ~ '.' ~ other ~ '_i', p ~ '.' ~ column ~ '_c') }} >= {{ level['at_least'] }})
     or ({{ p }}.{{ other }}_i = {{ p }}.{{ column }}_c
      and {{ idlink.name_similarity(p ~ '.' ~ column ~ '_i', p ~ '.' ~ other ~ '_c') }} >= {{ level['at_least'] }}))
{%- endmacro %}

{# Jaro-Winkler similarity at least `at_least` (macro name_similarity), computed once per pair and column however many
   levels read it (macro comparison_features). #}
{% macro level_jaro_winkler(level, column, p) -%}
    {{ p }}.{{ column }}_similarity >= {{ level['at_least'] }}
{%- endmacro %}

{# At most `edits` insertions, deletions, substitutions or transpositions of neighbours apart. #}
{% macro level_edits(level, column, p) -%}
    {{ idlink.within_edits(p ~ '.' ~ column ~ '_i', p ~ '.' ~ column ~ '_c', level['edits']) }}
{%- endmacro %}

{# One value begins with the other: an initial ("j" / "john") or an abbreviation ("chris" / "christopher"). #}
{% macro level_prefix(level, column, p) -%}
    (starts_with({{ p }}.{{ column }}_i, {{ p }}.{{ column }}_c) or starts_with({{ p }}.{{ column }}_c, {{ p }}.{{ column }}_i))
{%- endmacro %}
