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

{# Whether two strings are at most `n` edits apart (edit_distance <= n). DuckDB: plain Levenshtein is much
   cheaper than Damerau-Levenshtein and bounds it (dl <= lev <= 2 * dl), so the Damerau distance is only
   computed for the few pairs the bound leaves open. #}
{% macro within_edits(a, b, n) -%}{{ return(adapter.dispatch('within_edits', 'idlink')(a, b, n)) }}{%- endmacro %}

{% macro default__within_edits(a, b, n) -%}
    (levenshtein({{ a }}, {{ b }}) <= {{ n }}
     or (levenshtein({{ a }}, {{ b }}) <= {{ 2 * n }} and {{ idlink.edit_distance(a, b) }} <= {{ n }}))
{%- endmacro %}

{% macro postgres__within_edits(a, b, n) -%}({{ idlink.edit_distance(a, b) }} <= {{ n }}){%- endmacro %}

{# A number standing for a row's key, to join and deduplicate on instead of text; equal keys give equal
   numbers, different keys almost always different ones (callers must re-check the real key). #}
{% macro row_hash(columns) -%}{{ return(adapter.dispatch('row_hash', 'idlink')(columns)) }}{%- endmacro %}
{% macro default__row_hash(columns) -%}hash({{ columns | join(', ') }}){%- endmacro %}
{% macro postgres__row_hash(columns) -%}hashtextextended({{ columns | join(" || '|' || ") }}, 0){%- endmacro %}
