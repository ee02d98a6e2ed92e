{# Hints on how a CTE is evaluated, for the engines that take them: `materialized` (computed once and kept, for a
   CTE read several times whose rows are cheaper to keep than to recompute) and `not materialized` (inlined into
   each reader, so filters and projections reach its scans). DuckDB and Postgres accept both; other engines (Spark)
   reject the syntax, and get plain CTEs. Write `name as {{ idlink.materialized_cte() }} (...)`. #}
{% macro materialized_cte() -%}{{ return(adapter.dispatch('materialized_cte', 'idlink')()) }}{%- endmacro %}

{% macro default__materialized_cte() -%}{%- endmacro %}

{% macro duckdb__materialized_cte() -%}materialized{%- endmacro %}

{% macro postgres__materialized_cte() -%}materialized{%- endmacro %}

{% macro inlined_cte() -%}{{ return(adapter.dispatch('inlined_cte', 'idlink')()) }}{%- endmacro %}

{% macro default__inlined_cte() -%}{%- endmacro %}

{% macro duckdb__inlined_cte() -%}not materialized{%- endmacro %}

{% macro postgres__inlined_cte() -%}not materialized{%- endmacro %}
