{# Consent to CRM sync: how it is read from an identity's attributes and which identities it lets be linked. #}

{# The consent attribute configured for a provider. #}
{% macro consent_attribute(provider) -%}
    {%- set configured = var('consent_attribute') -%}
    {{ return(configured[provider] if configured is mapping else configured) }}
{%- endmacro %}

{# Consent from the custom attribute's text value: explicit yes -> granted, explicit no -> withdrawn, anything
   else -> missing (missing never counts as consent). #}
{% macro consent_state(value_text) -%}
    {#- a simple CASE: an IN list this long becomes a join per row in DuckDB -#}
    case lower(trim({{ value_text }}))
        {%- for v in ['true', '1', 'yes', 'y', 'granted'] %} when '{{ v }}' then 'granted'{% endfor %}
        {%- for v in ['false', '0', 'no', 'n', 'withdrawn', 'revoked', 'denied'] %} when '{{ v }}' then 'withdrawn'{% endfor %}
        else 'missing'
    end
{%- endmacro %}

{# An identity that may be linked to a CRM contact: consent granted and not deleted. `i` is the relation's alias,
   or none for unqualified columns. #}
{% macro linkable_identity(i=none) -%}
    {%- set p = (i ~ '.') if i else '' -%}
    {{ p }}consent_state = 'granted' and not {{ p }}is_deleted
{%- endmacro %}
