{# Comparisons the match rules name in dbt_project.yml (`require` / `reject`). A candidate pair is compared in
   two steps: `pair_features` computes every similarity of an identity row `i` and a contact row `c` once (one
   column each), then each comparison is a cheap boolean over that feature row `p`. A feature is null when
   either side's value is missing, and missing values never agree or disagree. #}

{# Columns of each side that pair_features reads. #}
{% macro pair_feature_columns() -%}
    {{ return(['email_valid', 'given_name_key', 'family_name_key', 'street_key', 'street_number', 'postal_code_key',
               'city_key', 'country_code']) }}
{%- endmacro %}

{# `nick` is the pair's row in nickname_pairs (macro nickname_pairs), left-joined on both first names. The
   family-name and place similarities are left null where `settled` holds (settled_by_early_rules): nothing reads
   them there. #}
{% macro pair_features(i, c, nick, settled='false') -%}
        ({{ i }}.email_valid and {{ c }}.email_valid) as emails_valid,
        {{ i }}.given_name_key as given_name_i,
        {{ c }}.given_name_key as given_name_c,
        {{ idlink.pair_feature(i, c, 'given_name_key', i ~ '.given_name_key = ' ~ c ~ '.given_name_key or ' ~ nick ~ '.given_name_a is not null') }} as given_shared_variant,
        {{ idlink.pair_feature(i, c, 'given_name_key', idlink.name_similarity(i ~ '.given_name_key', c ~ '.given_name_key')) }} as given_similarity,
        {{ idlink.pair_feature(i, c, 'given_name_key', 'starts_with(' ~ i ~ '.given_name_key, ' ~ c ~ '.given_name_key) or starts_with(' ~ c ~ '.given_name_key, ' ~ i ~ '.given_name_key)') }} as given_prefix,
        {{ idlink.pair_feature(i, c, 'given_name_key', 'least(length(' ~ i ~ '.given_name_key), length(' ~ c ~ '.given_name_key))') }} as given_min_length,
        {{ i }}.family_name_key as family_name_i,
        {{ c }}.family_name_key as family_name_c,
        {{ idlink.pair_feature(i, c, 'family_name_key', i ~ '.family_name_key = ' ~ c ~ '.family_name_key') }} as family_equal,
        {{ idlink.late_feature(settled, idlink.pair_feature(i, c, 'family_name_key', idlink.name_similarity(i ~ '.family_name_key', c ~ '.family_name_key'))) }} as family_similarity,
        {{ idlink.pair_feature(i, c, 'street_key', i ~ '.street_key = ' ~ c ~ '.street_key') }} as street_equal,
        {{ idlink.late_feature(settled, idlink.pair_feature(i, c, 'street_key', idlink.name_similarity(i ~ '.street_key', c ~ '.street_key'))) }} as street_similarity,
        {{ idlink.late_feature(settled, idlink.pair_feature(i, c, 'street_key', 'case when ' ~ idlink.name_similarity(i ~ '.street_key', c ~ '.street_key') ~ ' < ' ~ idlink.street_typo_similarity() ~ ' then ' ~ idlink.street_part_agreement(i, c) ~ ' end')) }} as street_part,
        {{ idlink.late_feature(settled, idlink.names_swapped(i, c)) }} as names_swapped,
        {{ i }}.postal_code_key as postal_code_i,
        {{ c }}.postal_code_key as postal_code_c,
        {{ i }}.postal_code_key = {{ c }}.postal_code_key as postal_equal,
        {{ idlink.late_feature(settled, idlink.pair_feature(i, c, 'city_key', idlink.name_similarity(i ~ '.city_key', c ~ '.city_key'))) }} as city_similarity,
        {{ i }}.country_code = {{ c }}.country_code as country_equal
{%- endmacro %}

{# `expr` unless `settled` holds, else null. #}
{% macro late_feature(settled, expr) -%}
    {%- if settled == 'false' -%}{{ expr }}{%- else -%}case when not {{ settled }} then {{ expr }} end{%- endif -%}
{%- endmacro %}

{# Comparisons that read only email validity and the first-name features, never the late ones (pair_features). #}
{% macro early_comparisons() -%}{{ return(['emails_valid', 'given_names_agree', 'first_names_differ']) }}{%- endmacro %}

{# Whether a pair of an identity row `i` and a contact row `c` (the sides' names in rule_blocking_terms) is
   certainly emitted by one of the leading rules that need no late feature: a rule with a constant confidence,
   no requirement but valid emails and only early comparisons as vetoes emits every pair it blocks that meets
   its requirement (a veto only sends it to review). Most pairs are such (a carried id, the same verified
   email), and their family-name and place similarities are never read, so pair_features leaves them out.
   'false' when the first rule needs them. #}
{% macro settled_by_early_rules(rules) -%}
    {%- set ns = namespace(terms=[], leading=true) -%}
    {%- for rule in rules if ns.leading -%}
        {%- set required = rule.get('require', []) -%}
        {%- if rule['confidence'] is number and required | reject('in', ['emails_valid']) | list | length == 0
               and rule.get('reject', {}).keys() | reject('in', idlink.early_comparisons()) | list | length == 0 -%}
            {%- set term = 'coalesce(' ~ (idlink.rule_blocking_terms(rule) | join(' or ')) ~ ', false)' -%}
            {%- if 'emails_valid' in required -%}
                {#- the precondition of valid emails is the comparison itself, so the term is exact -#}
                {%- set term = term ~ ' and coalesce(' ~ idlink.comparison_precondition('emails_valid', 'i', 'c') ~ ', false)' -%}
            {%- endif -%}
            {%- set ns.terms = ns.terms + ['(' ~ term ~ ')'] -%}
        {%- else -%}
            {%- set ns.leading = false -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return('(' ~ ns.terms | join(' or ') ~ ')' if ns.terms else 'false') }}
{%- endmacro %}

{# `expr` when both sides have `column`, else null. #}
{% macro pair_feature(i, c, column, expr) -%}
    case when {{ i }}.{{ column }} is not null and {{ c }}.{{ column }} is not null then {{ expr }} end
{%- endmacro %}

{# How two streets that are more than a typo apart still agree in part: 'partial' when one lacks the other's
   house number or street name ("12" or "main street" against "12 main street"), 'other_number' when the street
   names agree (a typo at most) but the house numbers differ, 'other_street' when the house numbers agree but the
   street names clearly differ (a replaced or second address line), else 'none'. #}
{% macro street_part_agreement(i, c) -%}
    {%- set name_i = idlink.street_name(i) -%}
    {%- set name_c = idlink.street_name(c) -%}
    case
        when {{ i }}.street_number = {{ c }}.street_number and ({{ name_i }} is null or {{ name_c }} is null) then 'partial'
        when {{ name_i }} is null or {{ name_c }} is null then 'none'
        when {{ name_i }} <> {{ name_c }} and {{ idlink.name_similarity(name_i, name_c) }} < {{ var('street_name_agreement') }}
            then case when {{ i }}.street_number = {{ c }}.street_number then 'other_street' else 'none' end
        when {{ i }}.street_number is null or {{ c }}.street_number is null then 'partial'
        else 'other_number'
    end
{%- endmacro %}

{# A row's normalised street without its house number, or null when nothing else is left. #}
{% macro street_name(r) -%}
    nullif(trim(coalesce(replace({{ r }}.street_key, {{ r }}.street_number, ''), {{ r }}.street_key)), '')
{%- endmacro %}

{# Streets at least this similar are a typo apart. #}
{% macro street_typo_similarity() -%}{{ return(0.85) }}{%- endmacro %}

{# First and family names entered the wrong way round: one side's family name is the other's first name, the
   other pair of names agrees, and the family names themselves do not. Exact on the first crossing keeps this a
   cheap test on the blocking join (see comparison_precondition). Never true when a name is missing. #}
{% macro names_swapped(i, c) -%}
    {%- set bar = var('family_name_agreement') -%}
    ({{ i }}.family_name_key = {{ c }}.given_name_key
     and {{ i }}.family_name_key <> {{ c }}.family_name_key
     and {{ idlink.name_similarity(i ~ '.given_name_key', c ~ '.family_name_key') }} >= {{ bar }}
     and {{ idlink.name_similarity(i ~ '.family_name_key', c ~ '.family_name_key') }} < {{ bar }})
{%- endmacro %}

{% macro comparison(name, p) -%}
    {%- if name == 'emails_valid' -%}
        coalesce({{ p }}.emails_valid, false)
    {%- elif name == 'given_names_agree' -%}
        {{ idlink.given_names_agree(p) }}
    {%- elif name == 'first_names_differ' -%}
        {{ idlink.first_names_differ(p) }}
    {%- elif name == 'names_agree' -%}
        ({{ idlink.given_names_agree(p) }} and {{ idlink.family_names_agree(p) }})
    {%- elif name == 'names_close' -%}
        ({{ idlink.given_names_agree(p) }} and {{ idlink.family_names_close(p) }}
         or {{ idlink.family_names_agree(p) }} and not {{ idlink.first_names_differ(p) }})
    {%- elif name == 'names_compatible' -%}
        ({{ idlink.family_names_agree(p) }} and not {{ idlink.first_names_differ(p) }})
    {%- elif name == 'name_and_place_agree' -%}
        {{ idlink.name_and_place_agree(p) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("match rule comparison '" ~ name ~ "' is not defined in macros/match_comparisons.sql") }}
    {%- endif -%}
{%- endmacro %}

{# A condition on an identity row `i` and a contact row `c` that every pair meeting comparison `name` meets, or
   none. It reads only pair_feature_columns and is checked on the blocking join itself, so most chance pairs of a
   rule that rejects nothing (a shared phone, a shared postal code and house number) are dropped before their
   rows are joined back. It must follow from the comparison, never narrow it: a pair it drops is one the rule
   could not emit. #}
{% macro comparison_precondition(name, i, c) -%}
    {%- if name == 'emails_valid' -%}
        {{ return('(' ~ i ~ '.email_valid and ' ~ c ~ '.email_valid)') }}
    {%- elif name in ('names_agree', 'names_close', 'names_compatible') -%}
        {{ return(idlink.family_names_within_typo(i ~ '.family_name_key', c ~ '.family_name_key')) }}
    {#- name + place needs a missing family name, a positive family weight (which only a family name at most a
        typo away or swapped names give) or the same street -#}
    {%- elif name == 'name_and_place_agree' and var('name_place_weights')['family_differ'] <= 0 -%}
        {{ return('(' ~ i ~ '.family_name_key = ' ~ c ~ '.given_name_key or '
                  ~ idlink.family_names_within_typo(i ~ '.family_name_key', c ~ '.family_name_key')
                  ~ ' or ' ~ i ~ '.family_name_key is null or ' ~ c ~ '.family_name_key is null'
                  ~ ' or ' ~ i ~ '.street_key = ' ~ c ~ '.street_key)') }}
    {%- else -%}
        {{ return(none) }}
    {%- endif -%}
{%- endmacro %}

{# Family names present and at most a typo apart by the loosest of the family-name bars (agreeing, close, the
   name + place typo weight), so anything that agrees or is close by any of them passes. #}
{% macro family_names_within_typo(a, b) -%}
    ({{ a }} = {{ b }}
     or {{ idlink.name_similarity(a, b) }} >= {{ [var('family_name_agreement'), var('family_name_typo'), idlink.family_typo_similarity()] | min }}
     or {{ idlink.within_edits(a, b, 2) }})
{%- endmacro %}

{# Below family_name_typo: in the name + place weights even a less similar family name counts as a typo. #}
{% macro family_typo_similarity() -%}{{ return(0.75) }}{%- endmacro %}

{# First names that may stand for the same person, both ways (given_name_a, given_name_b; never equal): their
   canonical names in the nickname seed overlap ("bill" and "will" both stand for "william"). Every canonical name
   is itself a name of the seed (a data test on the seed), so a name the seed does not know pairs with none. One
   row per pair, so a pair's features join it once. #}
{% macro nickname_pairs() -%}
    select distinct a.name as given_name_a, b.name as given_name_b
    from {{ ref('nickname_equivalents') }} as a
    inner join {{ ref('nickname_equivalents') }} as b
        on b.canonical_name = a.canonical_name and b.name <> a.name
{%- endmacro %}

{# A shared canonical name (nicknames), or similar enough to be a typo, or one is a spelled-out form of the other. #}
{% macro given_names_agree(p) -%}
    coalesce({{ p }}.given_shared_variant
        or {{ p }}.given_similarity >= {{ var('given_name_agreement') }}
        or ({{ p }}.given_min_length >= 3 and {{ p }}.given_prefix), false)
{%- endmacro %}

{# Both first names present and not even a typo apart (a lower bar than agreeing: "cora"/"clra" is a typo,
   "anna"/"peter" clearly differ), so a shared mailbox of two family members is never read as one person. #}
{% macro first_names_differ(p) -%}
    coalesce(not {{ p }}.given_shared_variant
        and {{ p }}.given_similarity < {{ var('given_name_conflict') }}
        and not {{ p }}.given_prefix, false)
{%- endmacro %}

{% macro family_names_agree(p) -%}
    coalesce({{ p }}.family_equal or {{ p }}.family_similarity >= {{ var('family_name_agreement') }}, false)
{%- endmacro %}

{# Family names at most a typo apart (a lower bar than agreeing). #}
{% macro family_names_close(p) -%}
    coalesce({{ p }}.family_equal or {{ p }}.family_similarity >= {{ var('family_name_typo') }}, false)
{%- endmacro %}

{# Name + place evidence as a sum of agreement weights (Fellegi-Sunter style: agreement on a field adds its
   weight, disagreement subtracts), weights in var name_place_weights. Missing values add nothing. A typo in
   one field costs part of its weight, so typos in names and street still add up; the same name at another
   address does not. Rendered as one column per field over the feature row `p`. #}
{% macro name_place_parts(p) -%}
    {%- set w = var('name_place_weights') -%}
        case when {{ p }}.given_similarity is null then 0
            when {{ p }}.given_shared_variant or {{ p }}.given_similarity >= {{ var('name_place_given_agreement') }}
                or {{ p }}.names_swapped then {{ w['given_agree'] }}
            when {{ p }}.given_similarity >= 0.7 or {{ idlink.within_edits(p ~ '.given_name_i', p ~ '.given_name_c', 2) }} then {{ w['given_typo'] }}
            else {{ w['given_differ'] }} end as given_weight,
        case when {{ p }}.family_equal is null then 0
            when {{ p }}.family_equal and {{ p }}.family_name_count <= {{ var('rare_family_name_count') }} then {{ w['family_equal'] + w['family_rare'] }}
            when {{ p }}.family_equal then {{ w['family_equal'] }}
            when {{ p }}.family_similarity >= {{ var('family_name_agreement') }} or {{ p }}.names_swapped then {{ w['family_agree'] }}
            when {{ p }}.family_similarity >= {{ idlink.family_typo_similarity() }} or {{ idlink.within_edits(p ~ '.family_name_i', p ~ '.family_name_c', 2) }} then {{ w['family_typo'] }}
            else {{ w['family_differ'] }} end as family_weight,
        case when {{ p }}.street_equal is null then 0
            when {{ p }}.street_equal then {{ w['street_equal'] }}
            when {{ p }}.street_similarity >= {{ idlink.street_typo_similarity() }} then {{ w['street_typo'] }}
            when {{ p }}.street_part = 'partial' then {{ w['street_partial'] }}
            when {{ p }}.street_part = 'other_number' then {{ w['street_other_number'] }}
            when {{ p }}.street_part = 'other_street' then {{ w['street_other_street'] }}
            else {{ w['street_differ'] }} end as street_weight,
        case when {{ p }}.postal_equal is null then 0
            when {{ p }}.postal_equal then {{ w['postal_equal'] }}
            when {{ idlink.within_edits(p ~ '.postal_code_i', p ~ '.postal_code_c', 1) }} then {{ w['postal_typo'] }}
            else {{ w['postal_differ'] }} end as postal_weight,
        case when {{ p }}.city_similarity is null then 0
            when {{ p }}.city_similarity >= {{ var('city_agreement') }} then {{ w['city_agree'] }}
            else {{ w['city_differ'] }} end as city_weight,
        case when {{ p }}.country_equal is null then 0
            when {{ p }}.country_equal then {{ w['country_equal'] }}
            else {{ w['country_differ'] }} end as country_weight
{%- endmacro %}

{% macro name_place_weight(p) -%}
    ({{ p }}.given_weight + {{ p }}.family_weight + {{ p }}.street_weight + {{ p }}.postal_weight
     + {{ p }}.city_weight + {{ p }}.country_weight)
{%- endmacro %}

{# Enough total weight, first names that do not clearly differ, and a family name that at least nearly agrees;
   or else agreeing first names and: where one side has no family name, the same street (a typo at most); where
   the family names differ (a changed or replaced name), the very same address (street with house number and
   postal code), which a namesake stranger or another member of the household does not share. #}
{% macro name_and_place_agree(p) -%}
    {%- set w = var('name_place_weights') -%}
    (({{ p }}.family_weight > 0
      or ({{ p }}.given_weight >= {{ w['given_agree'] }}
          and (({{ p }}.family_equal is null and {{ p }}.street_weight >= {{ w['street_typo'] }})
               or coalesce({{ p }}.street_equal and {{ p }}.postal_equal, false))))
     and {{ p }}.given_weight >= 0
     and {{ idlink.name_place_weight(p) }} >= {{ var('name_place_min_weight') }})
{%- endmacro %}

{# Confidence of a name + place match: below every deterministic rule, rising with the evidence weight. #}
{% macro name_place_score(p) -%}
    least(0.89, 0.5 + {{ idlink.name_place_weight(p) }} / 40.0)
{%- endmacro %}

{# Scores a rule may name as its `confidence` instead of a constant. #}
{% macro score(name, p) -%}
    {%- if name == 'name_place_score' -%}
        {{ idlink.name_place_score(p) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("match rule score '" ~ name ~ "' is not defined in macros/match_comparisons.sql") }}
    {%- endif -%}
{%- endmacro %}
