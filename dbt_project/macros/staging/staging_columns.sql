{# Normalised columns shared by every identity provider's and CRM's staging model, so all of them produce
   identical match keys. `r` is the renamed CTE (given_name, family_name, email_raw, email_valid_raw, phone_raw,
   street_address, city, postal_code, country_code_raw); given and family names and the city come from the
   name_keys CTE (see below), joined as `given`, `family` and `place`. #}

{% macro person_match_keys(r) -%}
        {{ idlink.normalize_email(r ~ '.email_raw') }} as email,
        given.name_key as given_name_key,
        given.phonetic as given_phonetic,
        family.name_key as family_name_key,
        family.phonetic as family_phonetic,
        {{ idlink.normalize_phone(r ~ '.phone_raw') }} as phone_e164,
        {{ idlink.normalize_name(idlink.address_line(r ~ '.street_address', 1)) }} as street_key,
        {{ idlink.normalize_name(idlink.address_line(r ~ '.street_address', 2)) }} as street_line_2_key,
        place.name_key as city_key,
        place.phonetic as city_phonetic,
        {{ idlink.normalize_postal_code(r ~ '.postal_code') }} as postal_code_key,
        upper({{ idlink.blank_to_null(r ~ '.country_code_raw') }}) as country_code
{%- endmacro %}

{# The joins person_match_keys reads from: each name-like field of `r` to its row in name_keys. #}
{% macro name_key_joins(r) -%}
    left join name_keys as given on given.value = {{ r }}.given_name
    left join name_keys as family on family.value = {{ r }}.family_name
    left join name_keys as place on place.value = {{ r }}.city
{%- endmacro %}

{# Names and cities repeat (a million people share tens of thousands of names), so each distinct value is
   normalised once, with everything derived from it: its key and consonant skeleton; above all the
   phonetic key costs far less so. Streets are mostly distinct and are normalised per
   row. `r` is read twice (here and by the joins), so callers declare it and its source `not materialized`:
   re-reading three columns is cheaper than materialising every column of the raw table. #}
{% macro name_keys(r) -%}
    select
        names.value,
        names.name_key,
        {{ idlink.phonetic_key('names.name_key') }} as phonetic
    from (
        select value, coalesce({{ idlink.normalize_name('value') }}, {{ idlink.name_in_any_script('value') }}) as name_key
        from (
            select given_name as value from {{ r }}
            union
            select family_name from {{ r }}
            union
            select city from {{ r }}
        ) as distinct_values
        where value is not null
    ) as names
{%- endmacro %}

{# Valid email: ingestion says so and something is left after normalising (`k` is the keyed CTE). #}
{% macro email_valid(k) -%}
    coalesce({{ k }}.email_valid_raw, false) and {{ k }}.email is not null
{%- endmacro %}

{# Keys derived from the normalised email and street (a second step, so their normalisation runs once per row),
   in column order with the name keys. #}
{% macro person_derived_keys(k) -%}
        {{ idlink.mailbox_key(k ~ '.email') }} as mailbox_key,
        {{ k }}.family_phonetic,
        {{ idlink.street_number(k ~ '.street_key') }} as street_number,
        {{ idlink.street_phonetic(k ~ '.street_key') }} as street_phonetic
{%- endmacro %}

{# The person's values and match keys every identity and contact staging model selects from its keyed CTE, in
   one order: linking compares these columns across the two sides. #}
{% macro person_columns(k) -%}
        {{ k }}.given_name,
        {{ k }}.family_name,
        {{ k }}.email,
        {{ idlink.email_valid(k) }} as email_valid,
        {{ k }}.given_name_key,
        {{ k }}.given_phonetic,
        {{ k }}.family_name_key,
{{ idlink.person_derived_keys(k) }},
        {{ k }}.phone_e164,
        {{ k }}.street_address,
        {{ k }}.street_key,
        {{ k }}.street_line_2_key,
        {{ k }}.city,
        {{ k }}.city_key,
        {{ k }}.city_phonetic,
        {{ k }}.postal_code,
        {{ k }}.postal_code_key,
        {{ k }}.country_code
{%- endmacro %}

{# The columns int_identities and int_contacts keep of every provider's and CRM's staging model: writing a
   million-row table costs about as much as computing it, so the intermediate tables carry only what linking
   and the marts read, and no key that is a cheap function of another (initials: macro derived_pair_columns). #}
{% macro match_key_columns() -%}
    {{ return(['email', 'email_valid', 'given_name_key', 'given_phonetic', 'family_name_key', 'mailbox_key',
               'family_phonetic', 'street_number', 'street_phonetic', 'phone_e164', 'street_key', 'street_line_2_key', 'city_key',
               'city_phonetic', 'postal_code_key', 'country_code']) }}
{%- endmacro %}

{% macro identity_link_columns() -%}
    {%- set consent_columns = [] -%}
    {%- for purpose in idlink.consent_purposes() -%}
        {%- do consent_columns.extend([purpose.name ~ '_consent_answer', purpose.name ~ '_consent_given_at',
                                       purpose.name ~ '_consent_expires_at']) -%}
    {%- endfor -%}
    {{ (['identity_provider', 'identity_id'] + idlink.match_key_columns()
        + ['consent_state', 'carried_contact_id', 'is_deleted',
           'given_name', 'family_name', 'street_address', 'city', 'postal_code',
           'client_id', 'created_at', 'email_verified', 'last_login_at', 'last_updated_at'] + consent_columns)
       | join(',\n        ') }}
{%- endmacro %}

{% macro contact_link_columns() -%}
    {%- set carried = [] -%}
    {%- for purpose in idlink.carried_purposes() -%}{%- do carried.append(purpose.name ~ '_opt_out') -%}{%- endfor -%}
    {{ (['crm', 'contact_id'] + idlink.match_key_columns()
        + ['external_user_id', 'master_record_id', 'is_deleted', 'record_exists', 'created_at', 'last_modified_at']
        + carried)
        | join(',\n        ') }}
{%- endmacro %}

{#- What the marts that carry an identity's attributes to a contact send (contacts_to_create,
    contact_fields_to_push), typed as their contracts say: the values of the field mapping's logical fields, and
    the client the identity registered through (which mapping entry applies). -#}
{% macro contact_values(relation) -%}
        cast({{ relation }}.email as {{ dbt.type_string() }}) as email,
        cast({{ relation }}.given_name as {{ dbt.type_string() }}) as given_name,
        cast({{ relation }}.family_name as {{ dbt.type_string() }}) as family_name,
        cast({{ relation }}.phone_e164 as {{ dbt.type_string() }}) as phone_e164,
        cast({{ relation }}.street_address as {{ dbt.type_string() }}) as street_address,
        cast({{ relation }}.city as {{ dbt.type_string() }}) as city,
        cast({{ relation }}.postal_code as {{ dbt.type_string() }}) as postal_code,
        cast({{ relation }}.country_code as {{ dbt.type_string() }}) as country_code,
        cast({{ relation }}.client_id as {{ dbt.type_string() }}) as client_id,
        cast({{ relation }}.created_at as {{ idlink.type_timestamp_tz() }}) as created_at,
        cast({{ relation }}.email_verified as boolean) as email_verified,
        cast({{ relation }}.last_login_at as {{ idlink.type_timestamp_tz() }}) as last_login_at,
        cast({{ relation }}.last_updated_at as {{ idlink.type_timestamp_tz() }}) as last_updated_at
{%- endmacro %}
