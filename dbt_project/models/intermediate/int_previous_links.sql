{#- The links as the previous build left them, so first_seen_at / linked_at survive rebuilds and a withdrawn
    consent can be recognised. Read from the snapshot's current rows, else the mart itself; neither is a ref
    (both are built downstream of this model), so this is resolved by introspection and is empty on the
    first build. -#}
{%- set snapshot_relation = adapter.get_relation(target.database, 'snapshots', 'identity_contact_links_snapshot') if execute else none -%}
{%- set mart_relation = adapter.get_relation(target.database, 'marts', 'identity_contact_links') if execute else none -%}
with

final as (
    {%- if snapshot_relation is not none %}
    select
        identity_provider, identity_id, crm, contact_id, match_rule, match_confidence, status,
        first_seen_at, linked_at
    from {{ snapshot_relation }}
    where dbt_valid_to is null
    {%- elif mart_relation is not none %}
    select
        identity_provider, identity_id, crm, contact_id, match_rule, match_confidence, status,
        first_seen_at, linked_at
    from {{ mart_relation }}
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as identity_provider,
        cast(null as {{ dbt.type_string() }}) as identity_id,
        cast(null as {{ dbt.type_string() }}) as crm,
        cast(null as {{ dbt.type_string() }}) as contact_id,
        cast(null as {{ dbt.type_string() }}) as match_rule,
        cast(null as double precision) as match_confidence,
        cast(null as {{ dbt.type_string() }}) as status,
        cast(null as {{ dbt.type_timestamp() }}) as first_seen_at,
        cast(null as {{ dbt.type_timestamp() }}) as linked_at
    where false
    {%- endif %}
)

select * from final
