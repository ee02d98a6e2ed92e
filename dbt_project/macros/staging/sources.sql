{# Raw tables are written by the ingestion pipelines. A source not loaded yet (e.g. no Akamai tenant) and a
   column the loader never saw a value for (dlt creates columns lazily) must not break the build, so staging
   selects through these macros: missing table -> zero typed rows, missing column -> typed null. #}

{% macro typed_columns_from(relation_ref, columns) -%}
    {%- set relation = adapter.get_relation(relation_ref.database, relation_ref.schema, relation_ref.identifier) if execute else none -%}
    {%- if relation is none %}
    select
        {%- for name, type in columns.items() %}
        cast(null as {{ type }}) as {{ name }}{{ "," if not loop.last }}
        {%- endfor %}
    where false
    {%- else -%}
        {%- set present = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
    select
        {%- for name, type in columns.items() %}
        {#- present columns are taken as loaded (their types are fixed by the ingestion schema) -#}
        {% if name in present %}{{ adapter.quote(name) }}{% else %}cast(null as {{ type }}){% endif %} as {{ name }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ relation }}
    {%- endif -%}
{%- endmacro %}

{% macro identity_raw_columns() -%}
    {{ return({
        'id': dbt.type_string(), 'display_name': dbt.type_string(), 'given_name': dbt.type_string(),
        'surname': dbt.type_string(), 'mail': dbt.type_string(), 'sign_in_email': dbt.type_string(),
        'mobile_phone': dbt.type_string(), 'business_phone': dbt.type_string(), 'phone_e164': dbt.type_string(),
        'street_address': dbt.type_string(), 'city': dbt.type_string(), 'postal_code': dbt.type_string(),
        'country': dbt.type_string(), 'country_code': dbt.type_string(), 'account_enabled': dbt.type_boolean(),
        'created_date_time': dbt.type_timestamp(), 'custom_attributes': dbt.type_string(),
        'client_id': dbt.type_string(), 'email_verified': dbt.type_boolean(),
        'last_login_at': idlink.type_timestamp_tz(), 'last_updated_at': idlink.type_timestamp_tz(),
        'email_valid': dbt.type_boolean(), 'quality_flags': dbt.type_string(), 'is_deleted': dbt.type_boolean(),
        'deleted_at': dbt.type_timestamp(), 'ingested_at': dbt.type_timestamp()
    }) }}
{%- endmacro %}

{# An instant (the raw tables load timestamps with their time zone, UTC): what identity timestamps the marts
   carry are typed as, whether or not the raw column exists yet. #}
{% macro type_timestamp_tz() -%}timestamp with time zone{%- endmacro %}

{% macro contact_raw_columns() -%}
    {{ return({
        'id': dbt.type_string(), 'account_id': dbt.type_string(), 'first_name': dbt.type_string(),
        'last_name': dbt.type_string(), 'email': dbt.type_string(), 'phone': dbt.type_string(),
        'mobile_phone': dbt.type_string(), 'mailing_street': dbt.type_string(), 'mailing_city': dbt.type_string(),
        'mailing_postal_code': dbt.type_string(), 'mailing_country': dbt.type_string(),
        'country_code': dbt.type_string(), 'phone_e164': dbt.type_string(), 'external_user_id': dbt.type_string(),
        'master_record_id': dbt.type_string(),
        'created_date': dbt.type_timestamp(), 'last_modified_date': dbt.type_timestamp(),
        'email_valid': dbt.type_boolean(), 'quality_flags': dbt.type_string(), 'is_deleted': dbt.type_boolean(),
        'extra_fields': dbt.type_string(), 'ingested_at': dbt.type_timestamp()
    }) }}
{%- endmacro %}

{% macro dynamics_contact_raw_columns() -%}
    {{ return({
        'id': dbt.type_string(), 'account_id': dbt.type_string(), 'first_name': dbt.type_string(),
        'last_name': dbt.type_string(), 'email': dbt.type_string(), 'phone': dbt.type_string(),
        'mobile_phone': dbt.type_string(), 'street': dbt.type_string(), 'city': dbt.type_string(),
        'postal_code': dbt.type_string(), 'country': dbt.type_string(), 'country_code': dbt.type_string(),
        'phone_e164': dbt.type_string(), 'external_user_id': dbt.type_string(),
        'master_record_id': dbt.type_string(), 'is_active': dbt.type_boolean(),
        'created_on': dbt.type_timestamp(), 'modified_on': dbt.type_timestamp(),
        'email_valid': dbt.type_boolean(), 'quality_flags': dbt.type_string(), 'is_deleted': dbt.type_boolean(),
        'ingested_at': dbt.type_timestamp()
    }) }}
{%- endmacro %}

{# Values of several keys of a JSON object held as text, as a list in the order of `keys` (index from 1); null
   when the text is missing or not valid JSON. One parse per row however many keys are read. #}
{% macro json_text_fields(expr, keys) -%}{{ return(adapter.dispatch('json_text_fields', 'idlink')(expr, keys)) }}{%- endmacro %}

{% macro default__json_text_fields(expr, keys) -%}
    case when json_valid({{ expr }}) then json_extract_string({{ expr }}, [
        {%- for key in keys %}'$."{{ key }}"'{{ ", " if not loop.last }}{% endfor -%}
    ]) end
{%- endmacro %}

{% macro postgres__json_text_fields(expr, keys) -%}
    case when {{ expr }} ~ '^\s*\{.*\}\s*$' then array[
        {%- for key in keys %}({{ expr }})::json ->> '{{ key }}'{{ ", " if not loop.last }}{% endfor -%}
    ] end
{%- endmacro %}

{% macro run_timestamp() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{% macro sync_log_columns() -%}
    {{ return({
        'run_id': dbt.type_string(), 'system': dbt.type_string(), 'operation': dbt.type_string(),
        'record_key': dbt.type_string(), 'payload_hash': dbt.type_string(), 'outcome': dbt.type_string(),
        'error_code': dbt.type_string(), 'error_message': dbt.type_string(), 'attempt': dbt.type_int(),
        'logged_at': dbt.type_timestamp(), 'actor': dbt.type_string(), 'rule': dbt.type_string()
    }) }}
{%- endmacro %}

{% macro dead_letter_columns() -%}
    {{ return({
        'system': dbt.type_string(), 'record_key': dbt.type_string(), 'payload_hash': dbt.type_string(),
        'error_code': dbt.type_string(), 'error_message': dbt.type_string(), 'attempts': dbt.type_int(),
        'first_failed_at': dbt.type_timestamp(), 'last_failed_at': dbt.type_timestamp()
    }) }}
{%- endmacro %}

{# An ISO 8601 date-time held as text (an attribute's value) as a UTC timestamp; null when it is not one. #}
{% macro text_timestamp(expr) -%}{{ return(adapter.dispatch('text_timestamp', 'idlink')(expr)) }}{%- endmacro %}

{% macro default__text_timestamp(expr) -%}
    timezone('UTC', try_cast({{ expr }} as timestamptz))
{%- endmacro %}

{% macro postgres__text_timestamp(expr) -%}
    case when {{ expr }} ~ '^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$'
        then ({{ expr }})::timestamptz at time zone 'UTC' end
{%- endmacro %}

{# Ids of a system's erased records (privacy.erased_subjects), for staging to leave out; none before the first
   erasure. #}
{% macro erased_ids(system) -%}
    select record_id from (
        {{ idlink.typed_columns_from(source('privacy', 'erased_subjects'),
                                     {'system': dbt.type_string(), 'record_id': dbt.type_string()}) }}
    ) as erased
    where system = '{{ system }}'
{%- endmacro %}
