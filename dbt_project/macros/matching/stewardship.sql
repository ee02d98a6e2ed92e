{# Steward decisions (python -m stewardship): one row per decision, only ever added. Created here, at the start of
   every dbt invocation, and never rebuilt or dropped by dbt, so the decisions survive every build and every
   training run. The build reads the latest decision of each pair (model int_link_decisions). #}
{% macro create_link_decision_tables() -%}
    {%- set schema = var('link_decisions_schema') -%}
    create schema if not exists {{ schema }};
    create table if not exists {{ schema }}.decisions (
        decision_id {{ dbt.type_string() }},
        identity_provider {{ dbt.type_string() }},
        identity_id {{ dbt.type_string() }},
        crm {{ dbt.type_string() }},
        contact_id {{ dbt.type_string() }},
        decision {{ dbt.type_string() }},
        decided_by {{ dbt.type_string() }},
        decided_at {{ dbt.type_timestamp() }},
        reason {{ dbt.type_string() }}
    )
{%- endmacro %}

{# CTE never_linked_pair_rows: the (identity_row, contact_row) of every pair a steward said never to link, or
   unlinked, as the blocking passes name pairs (macro paired_rows_ctes, `excluded`): such a pair is never
   compared, linked or reviewed. #}
{% macro never_linked_pair_rows_cte() -%}
never_linked_pair_rows as (
    select
        {{ idlink.row_hash(['identity_provider', 'identity_id']) }} as identity_row,
        {{ idlink.row_hash(['crm', 'contact_id']) }} as contact_row
    from {{ ref('int_link_decisions') }}
    where decision in ('never_link', 'unlink')
)
{%- endmacro %}
