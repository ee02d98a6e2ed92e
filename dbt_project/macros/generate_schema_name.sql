{# Schemas are exactly the configured name (staging, intermediate, marts, snapshots): analysts and the reverse
   ETL address them without a target prefix. #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema | trim }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
