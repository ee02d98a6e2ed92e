{# Materialization `published_view`: a view of a published database over that database's own tables (e.g.
   links.link_evidence re-expanding links.link_scores), so a publication copies the compact tables and readers
   still query the long form. Its SQL names published relations (`links.link_scores`), which exist only where the
   publisher writes: the build creates nothing in the warehouse (it drops what an earlier materialization left at
   the model's name) and records the SQL in publishing.views (published schema, name, definition); the publisher
   creates each recorded view beside the tables it copies (publishing/). Name the relations the view reads in a
   `-- depends_on: {{ ref(...) }}` line so the view is recorded after them. #}

{% macro published_views_registry() -%}
    {{ return(api.Relation.create(database=this.database, schema='publishing', identifier='views', type='table')) }}
{%- endmacro %}

{% materialization published_view, default -%}
    {%- set published_schema = model['name'].split('__', 1)[0] -%}
    {%- set registry = idlink.published_views_registry() -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ drop_relation_if_exists(load_cached_relation(this)) }}
    {% do adapter.create_schema(api.Relation.create(database=registry.database, schema=registry.schema)) %}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {% call statement('registry') -%}
        create table if not exists {{ registry }} (
            published_schema {{ dbt.type_string() }},
            name {{ dbt.type_string() }},
            definition {{ dbt.type_string() }},
            recorded_at {{ dbt.type_timestamp() }}
        )
    {%- endcall %}
    {% call statement('forget') -%}
        delete from {{ registry }}
        where published_schema = '{{ published_schema }}' and name = '{{ this.identifier }}'
    {%- endcall %}
    {% call statement('main') -%}
        insert into {{ registry }}
        values ('{{ published_schema }}', '{{ this.identifier }}', '{{ sql | replace("'", "''") }}',
            {{ idlink.run_timestamp() }})
    {%- endcall %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': []}) }}
{%- endmaterialization %}
