{# Consent per purpose (var consent_purposes): how each purpose's answer, the time it was given and its expiry
   are read from an identity's custom attributes, and what a purpose's state is at this run. `crm_sync` gates
   every link and push: its state is the identity's `consent_state`, which linking reads. #}

{# The purposes, in configuration order. #}
{% macro consent_purposes() -%}
    {{ return(var('consent_purposes')) }}
{%- endmacro %}

{# A purpose's custom attribute for a provider (one name, or one per provider); the time it was given and its
   expiry are the attributes of the same name suffixed `At` and `ExpiresAt` (ISO 8601 text). #}
{% macro consent_attribute(purpose, provider) -%}
    {%- set configured = purpose['attribute'] -%}
    {{ return(configured[provider] if configured is mapping else configured) }}
{%- endmacro %}

{# The custom attributes staging reads for consent, three per purpose, in consent_purposes order. #}
{% macro consent_attribute_names(provider) -%}
    {%- set names = [] -%}
    {%- for purpose in idlink.consent_purposes() -%}
        {%- set attribute = idlink.consent_attribute(purpose, provider) -%}
        {%- do names.extend([attribute, attribute ~ 'At', attribute ~ 'ExpiresAt']) -%}
    {%- endfor -%}
    {{ return(names) }}
{%- endmacro %}

{# The purposes carried to the CRM (those with a crm_field). #}
{% macro carried_purposes() -%}
    {{ return(idlink.consent_purposes() | selectattr('crm_field', 'defined') | list) }}
{%- endmacro %}

{# The answer in the attribute's text: explicit yes -> granted, explicit no -> withdrawn, anything else ->
   missing (missing never counts as consent). #}
{% macro consent_answer(value_text) -%}
    {#- a simple CASE: an IN list this long becomes a join per row in DuckDB -#}
    case lower(trim({{ value_text }}))
        {%- for v in ['true', '1', 'yes', 'y', 'granted'] %} when '{{ v }}' then 'granted'{% endfor %}
        {%- for v in ['false', '0', 'no', 'n', 'withdrawn', 'revoked', 'denied'] %} when '{{ v }}' then 'withdrawn'{% endfor %}
        else 'missing'
    end
{%- endmacro %}

{# The state at this run: a granted answer past its expiry is `expired` and counts as no consent. #}
{% macro consent_state(answer, expires_at) -%}
    case when {{ answer }} = 'granted' and {{ expires_at }} <= {{ idlink.run_timestamp() }} then 'expired'
         else {{ answer }} end
{%- endmacro %}

{# An identity that may be linked to a CRM contact: crm_sync consent granted and not deleted. `i` is the
   relation's alias, or none for unqualified columns. #}
{% macro linkable_identity(i=none) -%}
    {%- set p = (i ~ '.') if i else '' -%}
    {{ p }}consent_state = 'granted' and not {{ p }}is_deleted
{%- endmacro %}
