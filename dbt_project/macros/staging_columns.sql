{# Normalised columns shared by every identity provider's and CRM's staging model, so all of them produce
   identical match keys. `r` is the renamed CTE (given_name, family_name, email_raw, email_valid_raw, phone_raw, country_code_raw). #}

{% macro person_match_keys(r) -%}
        {{ idlink.normalize_email(r ~ '.email_raw') }} as email,
        {{ idlink.normalize_name(r ~ '.given_name') }} as given_name_key,
        {{ idlink.normalize_name(r ~ '.family_name') }} as family_name_key,
        {{ idlink.normalize_phone(r ~ '.phone_raw') }} as phone_e164,
        {{ idlink.normalize_name(r ~ '.street_address') }} as street_key,
        {{ idlink.normalize_name(r ~ '.city') }} as city_key,
        {{ idlink.normalize_postal_code(r ~ '.postal_code') }} as postal_code_key,
        {{ idlink.blank_to_null('upper(' ~ r ~ '.country_code_raw)') }} as country_code
{%- endmacro %}

{# Valid email: ingestion says so and something is left after normalising (`k` is the keyed CTE). #}
{% macro email_valid(k) -%}
    coalesce({{ k }}.email_valid_raw, false) and {{ k }}.email is not null
{%- endmacro %}

{# Keys derived from the normalised columns (a second step, so the normalisation runs once per row). #}
{% macro person_derived_keys(k) -%}
        {{ idlink.mailbox_key(k ~ '.email') }} as mailbox_key,
        coalesce(nick.variants, {{ idlink.single_item_list(k ~ '.given_name_key') }}) as given_name_variants,
        left({{ k }}.given_name_key, 1) as given_initial,
        left({{ k }}.family_name_key, 1) as family_initial,
        {{ idlink.phonetic_key(k ~ '.family_name_key') }} as family_phonetic,
        {{ idlink.street_number(k ~ '.street_key') }} as street_number
{%- endmacro %}

{# First name -> every name it may stand for (nickname seed), one row per name. #}
{% macro nickname_variants() -%}
    select name, {{ idlink.list_agg('canonical_name') }} as variants
    from {{ ref('nickname_equivalents') }}
    group by name
{%- endmacro %}

{% macro list_agg(expr) -%}{{ return(adapter.dispatch('list_agg', 'idlink')(expr)) }}{%- endmacro %}
{% macro default__list_agg(expr) -%}list({{ expr }} order by {{ expr }}){%- endmacro %}
{# Postgres keeps the list as text "[a,b]" (names are normalised to [a-z0-9 ], so commas cannot occur): the
   same literal DuckDB prints, so unit-test fixtures are portable. #}
{% macro postgres__list_agg(expr) -%}'[' || string_agg({{ expr }}, ',' order by {{ expr }}) || ']'{%- endmacro %}

{% macro single_item_list(expr) -%}{{ return(adapter.dispatch('single_item_list', 'idlink')(expr)) }}{%- endmacro %}
{% macro default__single_item_list(expr) -%}case when {{ expr }} is not null then [{{ expr }}] end{%- endmacro %}
{% macro postgres__single_item_list(expr) -%}case when {{ expr }} is not null then '[' || {{ expr }} || ']' end{%- endmacro %}

{% macro lists_overlap(a, b) -%}{{ return(adapter.dispatch('lists_overlap', 'idlink')(a, b)) }}{%- endmacro %}
{% macro default__lists_overlap(a, b) -%}list_has_any({{ a }}, {{ b }}){%- endmacro %}
{% macro postgres__lists_overlap(a, b) -%}
    (regexp_split_to_array(trim(both '[]' from {{ a }}), '\s*,\s*') && regexp_split_to_array(trim(both '[]' from {{ b }}), '\s*,\s*'))
{%- endmacro %}
