{# Schemas are exactly the configured name (staging, intermediate, marts, snapshots): analysts and the reverse
   ETL address them without a target prefix. #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema | trim }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}

{# A published view is named `<role>__<relation>` in the project (names are unique across it) and created as
   `<relation>` in its role's schema (analyst_views.identity_contact_links), the name its readers query. #}
{% macro generate_alias_name(custom_alias_name=none, node=none) -%}
    {%- if custom_alias_name -%}
        {{ custom_alias_name | trim }}
    {%- elif node.resource_type == 'model' and 'published' in node.fqn -%}
        {{ node.name.split('__', 1)[1] }}
    {%- else -%}
        {{ node.name }}
    {%- endif -%}
{%- endmacro %}
