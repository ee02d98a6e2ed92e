{# Comparisons the match rules name in dbt_project.yml (`require` / `reject`). Each renders a boolean over an
   identity row `i` and a contact row `c` of int_identities / int_contacts. #}

{% macro comparison(name, i, c) -%}
    {%- if name == 'emails_valid' -%}
        ({{ i }}.email_valid and {{ c }}.email_valid)
    {%- elif name == 'given_names_agree' -%}
        {{ idlink.given_names_agree(i, c) }}
    {%- elif name == 'first_names_differ' -%}
        {{ idlink.first_names_differ(i, c) }}
    {%- elif name == 'names_agree' -%}
        ({{ idlink.given_names_agree(i, c) }} and {{ idlink.family_names_agree(i, c) }})
    {%- elif name == 'names_compatible' -%}
        ({{ idlink.family_names_agree(i, c) }} and not {{ idlink.first_names_differ(i, c) }})
    {%- elif name == 'name_and_place_agree' -%}
        {{ idlink.name_and_place_agree(i, c) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("match rule comparison '" ~ name ~ "' is not defined in macros/match_comparisons.sql") }}
    {%- endif -%}
{%- endmacro %}

{# A shared canonical name (nicknames), or similar enough to be a typo, or one is a spelled-out form of the other. #}
{% macro given_names_agree(i, c) -%}
    ({{ i }}.given_name_key is not null and {{ c }}.given_name_key is not null and (
        {{ idlink.lists_overlap(i ~ '.given_name_variants', c ~ '.given_name_variants') }}
        or {{ idlink.name_similarity(i ~ '.given_name_key', c ~ '.given_name_key') }} >= {{ var('given_name_agreement') }}
        or (length({{ i }}.given_name_key) >= 3 and length({{ c }}.given_name_key) >= 3
            and (starts_with({{ i }}.given_name_key, {{ c }}.given_name_key)
                 or starts_with({{ c }}.given_name_key, {{ i }}.given_name_key)))))
{%- endmacro %}

{# Both first names present and not even a typo apart (a lower bar than agreeing: "cora"/"clra" is a typo,
   "anna"/"peter" clearly differ), so a shared mailbox of two family members is never read as one person. #}
{% macro first_names_differ(i, c) -%}
    ({{ i }}.given_name_key is not null and {{ c }}.given_name_key is not null
     and not {{ idlink.lists_overlap(i ~ '.given_name_variants', c ~ '.given_name_variants') }}
     and {{ idlink.name_similarity(i ~ '.given_name_key', c ~ '.given_name_key') }} < {{ var('given_name_conflict') }}
     and not starts_with({{ i }}.given_name_key, {{ c }}.given_name_key)
     and not starts_with({{ c }}.given_name_key, {{ i }}.given_name_key))
{%- endmacro %}

{% macro family_names_agree(i, c) -%}
    ({{ i }}.family_name_key is not null and {{ c }}.family_name_key is not null and (
        {{ i }}.family_name_key = {{ c }}.family_name_key
        or {{ idlink.name_similarity(i ~ '.family_name_key', c ~ '.family_name_key') }} >= {{ var('family_name_agreement') }}))
{%- endmacro %}

{# Name + place evidence as a sum of agreement weights (Fellegi-Sunter style: agreement on a field adds its
   weight, disagreement subtracts), weights in var name_place_weights. Missing values add nothing. A typo in
   one field costs part of its weight, so typos in names and street still add up; the same name at another
   address does not. #}
{% macro name_place_parts(i, c) -%}
    {%- set w = var('name_place_weights') -%}
    {%- set given_sim = idlink.name_similarity(i ~ '.given_name_key', c ~ '.given_name_key') -%}
    {%- set family_sim = idlink.name_similarity(i ~ '.family_name_key', c ~ '.family_name_key') -%}
    {%- set street_sim = idlink.name_similarity(i ~ '.street_key', c ~ '.street_key') -%}
    {{ return({
        'given': "(case when " ~ i ~ ".given_name_key is null or " ~ c ~ ".given_name_key is null then 0"
            ~ " when " ~ idlink.lists_overlap(i ~ '.given_name_variants', c ~ '.given_name_variants')
            ~ " or " ~ given_sim ~ " >= " ~ var('name_place_given_agreement') ~ " then " ~ w['given_agree']
            ~ " when " ~ given_sim ~ " >= 0.7 or " ~ idlink.edit_distance(i ~ '.given_name_key', c ~ '.given_name_key') ~ " <= 2 then " ~ w['given_typo']
            ~ " else " ~ w['given_differ'] ~ " end)",
        'family': "(case when " ~ i ~ ".family_name_key is null or " ~ c ~ ".family_name_key is null then 0"
            ~ " when " ~ i ~ ".family_name_key = " ~ c ~ ".family_name_key then " ~ w['family_equal']
            ~ " when " ~ family_sim ~ " >= " ~ var('family_name_agreement') ~ " then " ~ w['family_agree']
            ~ " when " ~ family_sim ~ " >= 0.75 or " ~ idlink.edit_distance(i ~ '.family_name_key', c ~ '.family_name_key') ~ " <= 2 then " ~ w['family_typo']
            ~ " else " ~ w['family_differ'] ~ " end)",
        'street': "(case when " ~ i ~ ".street_key is null or " ~ c ~ ".street_key is null then 0"
            ~ " when " ~ i ~ ".street_key = " ~ c ~ ".street_key then " ~ w['street_equal']
            ~ " when " ~ street_sim ~ " >= 0.85 then " ~ w['street_typo']
            ~ " else " ~ w['street_differ'] ~ " end)",
        'postal': "(case when " ~ i ~ ".postal_code_key is null or " ~ c ~ ".postal_code_key is null then 0"
            ~ " when " ~ i ~ ".postal_code_key = " ~ c ~ ".postal_code_key then " ~ w['postal_equal']
            ~ " else " ~ w['postal_differ'] ~ " end)",
        'city': "(case when " ~ i ~ ".city_key is null or " ~ c ~ ".city_key is null then 0"
            ~ " when " ~ idlink.name_similarity(i ~ '.city_key', c ~ '.city_key') ~ " >= " ~ var('city_agreement') ~ " then " ~ w['city_agree']
            ~ " else " ~ w['city_differ'] ~ " end)",
        'country': "(case when " ~ i ~ ".country_code is null or " ~ c ~ ".country_code is null then 0"
            ~ " when " ~ i ~ ".country_code = " ~ c ~ ".country_code then " ~ w['country_equal']
            ~ " else " ~ w['country_differ'] ~ " end)",
    }) }}
{%- endmacro %}

{% macro name_place_weight(i, c) -%}
    {%- set parts = idlink.name_place_parts(i, c) -%}
    ({{ parts['given'] }} + {{ parts['family'] }} + {{ parts['street'] }} + {{ parts['postal'] }}
     + {{ parts['city'] }} + {{ parts['country'] }})
{%- endmacro %}

{# Enough total weight, a family name that at least nearly agrees, and first names that do not clearly differ. #}
{% macro name_and_place_agree(i, c) -%}
    {%- set parts = idlink.name_place_parts(i, c) -%}
    ({{ parts['family'] }} > 0 and {{ parts['given'] }} >= 0
     and {{ idlink.name_place_weight(i, c) }} >= {{ var('name_place_min_weight') }})
{%- endmacro %}

{# Confidence of a name + place match: below every deterministic rule, rising with the evidence weight. #}
{% macro name_place_score(i, c) -%}
    least(0.89, 0.5 + {{ idlink.name_place_weight(i, c) }} / 40.0)
{%- endmacro %}

{# Scores a rule may name as its `confidence` instead of a constant. #}
{% macro score(name, i, c) -%}
    {%- if name == 'name_place_score' -%}
        {{ idlink.name_place_score(i, c) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("match rule score '" ~ name ~ "' is not defined in macros/match_comparisons.sql") }}
    {%- endif -%}
{%- endmacro %}
