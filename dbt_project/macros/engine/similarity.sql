{# Jaro-Winkler similarity in [0, 1] (typo- and prefix-friendly for short names). DuckDB has it built in; on
   Postgres the engine setup creates a function that computes the same (macro postgres_jaro_winkler_function), so
   the comparison levels' thresholds mean the same on both. #}
{% macro name_similarity(a, b) -%}{{ return(adapter.dispatch('name_similarity', 'idlink')(a, b)) }}{%- endmacro %}

{% macro default__name_similarity(a, b) -%}
    coalesce(jaro_winkler_similarity({{ a }}, {{ b }}), 0)
{%- endmacro %}

{% macro postgres__name_similarity(a, b) -%}
    coalesce({{ target.schema }}.idlink_jaro_winkler({{ a }}, {{ b }}), 0)
{%- endmacro %}

{# Edits (insert, delete, substitute, transpose two neighbours) between two short strings, e.g. postal codes;
   on Postgres a function the engine setup creates (macro postgres_damerau_levenshtein_function). #}
{% macro edit_distance(a, b) -%}{{ return(adapter.dispatch('edit_distance', 'idlink')(a, b)) }}{%- endmacro %}

{% macro default__edit_distance(a, b) -%}damerau_levenshtein({{ a }}, {{ b }}){%- endmacro %}

{% macro postgres__edit_distance(a, b) -%}{{ target.schema }}.idlink_damerau_levenshtein({{ a }}, {{ b }}){%- endmacro %}

{# Whether two strings are at most `n` edits apart (edit_distance <= n). DuckDB: plain Levenshtein is much
   cheaper than Damerau-Levenshtein and bounds it (dl <= lev <= 2 * dl), so the Damerau distance is only
   computed for the few pairs the bound leaves open. #}
{% macro within_edits(a, b, n) -%}{{ return(adapter.dispatch('within_edits', 'idlink')(a, b, n)) }}{%- endmacro %}

{% macro default__within_edits(a, b, n) -%}
    (levenshtein({{ a }}, {{ b }}) <= {{ n }}
     or (levenshtein({{ a }}, {{ b }}) <= {{ 2 * n }} and {{ idlink.edit_distance(a, b) }} <= {{ n }}))
{%- endmacro %}

{# fuzzystrmatch's levenshtein bounds the distance from below as in DuckDB, so the plpgsql Damerau distance runs
   only where it can still decide. #}
{% macro postgres__within_edits(a, b, n) -%}
    (levenshtein(left({{ a }}, 255), left({{ b }}, 255)) <= {{ n }}
     or (levenshtein(left({{ a }}, 255), left({{ b }}, 255)) <= {{ 2 * n }} and {{ idlink.edit_distance(a, b) }} <= {{ n }}))
{%- endmacro %}

{# A number standing for a row's key, to join and deduplicate on instead of text; equal keys give equal
   numbers, different keys almost always different ones (callers must re-check the real key). #}
{% macro row_hash(columns) -%}{{ return(adapter.dispatch('row_hash', 'idlink')(columns)) }}{%- endmacro %}
{% macro default__row_hash(columns) -%}hash({{ columns | join(', ') }}){%- endmacro %}
{% macro postgres__row_hash(columns) -%}hashtextextended({{ columns | join(" || '|' || ") }}, 0){%- endmacro %}

{# A text that orders rows in the same pseudo-random way on every engine (the MD5 of their key, compared byte by
   byte): training draws its samples by it, so DuckDB and Postgres learn from the same records. (row_hash differs
   between engines.) #}
{% macro draw_order(columns) -%}{{ return(adapter.dispatch('draw_order', 'idlink')(columns)) }}{%- endmacro %}
{% macro default__draw_order(columns) -%}md5({{ columns | join(" || '|' || ") }}){%- endmacro %}
{% macro postgres__draw_order(columns) -%}md5({{ columns | join(" || '|' || ") }}) collate "C"{%- endmacro %}
