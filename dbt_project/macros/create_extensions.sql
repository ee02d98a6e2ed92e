{# Postgres needs extensions for accent stripping and edit distance; DuckDB has these built in. #}
{% macro create_extensions() -%}
    {{ return(adapter.dispatch('create_extensions', 'idlink')()) }}
{%- endmacro %}

{% macro default__create_extensions() -%}
    select 1
{%- endmacro %}

{% macro postgres__create_extensions() -%}
    create extension if not exists unaccent;
    create extension if not exists fuzzystrmatch
{%- endmacro %}
