{# String similarity in [0, 1]. DuckDB: Jaro-Winkler (typo- and prefix-friendly for short names). Postgres
   has no Jaro-Winkler: one minus half the normalised Levenshtein distance (fuzzystrmatch) stands in; halving
   keeps it close to Jaro-Winkler on short names (one substitution in 7 letters: 0.93 vs 0.94; unrelated names:
   about 0.5 in both), so the same thresholds apply. A transposition counts two edits there, so Postgres is
   stricter on swapped letters. #}
{% macro name_similarity(a, b) -%}{{ return(adapter.dispatch('name_similarity', 'idlink')(a, b)) }}{%- endmacro %}

{% macro default__name_similarity(a, b) -%}
    coalesce(jaro_winkler_similarity({{ a }}, {{ b }}), 0)
{%- endmacro %}

{% macro postgres__name_similarity(a, b) -%}
    coalesce(1.0 - 0.5 * levenshtein(left({{ a }}, 255), left({{ b }}, 255))::double precision
        / greatest(length({{ a }}), length({{ b }}), 1), 0)
{%- endmacro %}

{# Edits (insert, delete, substitute, transpose) between two short strings, e.g. postal codes. #}
{% macro edit_distance(a, b) -%}{{ return(adapter.dispatch('edit_distance', 'idlink')(a, b)) }}{%- endmacro %}

{% macro default__edit_distance(a, b) -%}damerau_levenshtein({{ a }}, {{ b }}){%- endmacro %}

{% macro postgres__edit_distance(a, b) -%}levenshtein(left({{ a }}, 255), left({{ b }}, 255)){%- endmacro %}
