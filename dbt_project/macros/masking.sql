{# How personal fields appear in the analyst views: keyed (a salted hash to join on) or partly shown (to read).
   The salt is never in a view's SQL: the publisher sets it on its own session (DuckDB variable / Postgres
   setting `idlink_hash_salt`) while it copies the views, so a key exists only in the published tables, and a
   view read without it yields null keys. #}

{# Salted SHA-256 of a value, hex; null for null. #}
{% macro keyed_hash(expr) -%}{{ return(adapter.dispatch('keyed_hash', 'idlink')(expr)) }}{%- endmacro %}

{% macro default__keyed_hash(expr) -%}
    sha256(getvariable('idlink_hash_salt') || ':' || {{ expr }})
{%- endmacro %}

{% macro postgres__keyed_hash(expr) -%}
    encode(sha256(convert_to(current_setting('idlink.hash_salt', true) || ':' || {{ expr }}, 'UTF8')), 'hex')
{%- endmacro %}

{# An email to read, not to use: the first character of the local part and the domain (j***@example.com). #}
{% macro masked_email(expr) -%}
    case when {{ expr }} like '%_@_%'
        then left({{ expr }}, 1) || '***@' || split_part({{ expr }}, '@', 2) end
{%- endmacro %}

{# A phone number's last two digits (***12): enough to tell two numbers apart when reading. #}
{% macro masked_phone(expr) -%}
    case when length({{ expr }}) > 4 then '***' || right({{ expr }}, 2) end
{%- endmacro %}
