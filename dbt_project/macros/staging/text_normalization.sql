{# Text normalisation shared by every staging model; dispatched so DuckDB and Postgres give the same keys. #}

{% macro nfc(expr) -%}{{ return(adapter.dispatch('nfc', 'idlink')(expr)) }}{%- endmacro %}
{% macro default__nfc(expr) -%}nfc_normalize({{ expr }}){%- endmacro %}
{% macro postgres__nfc(expr) -%}normalize({{ expr }}, NFC){%- endmacro %}

{# Accents removed from text in any Unicode normal form ("José" composed or decomposed -> "Jose"). #}
{% macro strip_accents(expr) -%}{{ return(adapter.dispatch('strip_accents', 'idlink')(expr)) }}{%- endmacro %}
{% macro default__strip_accents(expr) -%}strip_accents({{ idlink.nfc(expr) }}){%- endmacro %}
{# DuckDB's strip_accents decomposes before it drops the marks, and every normal form of a text decomposes alike,
   so composing first (NFC) would change nothing and doubles the cost. #}
{% macro duckdb__strip_accents(expr) -%}strip_accents({{ expr }}){%- endmacro %}
{# unaccent replaces precomposed characters only, so the text is composed first. #}
{% macro postgres__strip_accents(expr) -%}unaccent({{ idlink.nfc(expr) }}){%- endmacro %}

{# Text without its leading and trailing spaces (all that trim removes, in DuckDB and Postgres alike). Most values
   have none, and trim copies every value it is given, which costs a million-row staging model more than
   lower-casing it does. `expr` appears three times, so pass a column or a cheap expression. #}
{% macro trim_spaces(expr) -%}
    case when {{ expr }} like ' %' or {{ expr }} like '% ' then trim({{ expr }}) else {{ expr }} end
{%- endmacro %}

{# Empty or blank text becomes null so "missing" never equals "missing" (`expr`: as for trim_spaces). #}
{% macro blank_to_null(expr) -%}nullif({{ idlink.trim_spaces(expr) }}, ''){%- endmacro %}

{# Lower-casing and composing (NFC) never add a space at either end, so the trimmed input needs no second trim. #}
{% macro normalize_email(expr) -%}
    nullif(lower({{ idlink.nfc(idlink.trim_spaces(expr)) }}), '')
{%- endmacro %}

{# Mailbox key: the address mail actually reaches. Dots are ignored by some providers, +tags by those that
   support plus-addressing (both lists are vars). Input must already be a normalised email; an address with
   more than one '@' is no mailbox. Most addresses are their own mailbox key; they skip the string splitting.
   Domains are tested with `like` on the address rather than compared after split_part: DuckDB fails to plan
   a comparison of split_part's result when a column holds no address at all (a source without emails). #}
{% macro mailbox_key(email) -%}
    {%- set dotless = var('dotless_mailbox_domains') -%}
    {%- set plus = var('plus_addressing_domains') -%}
    {%- set local = "split_part(" ~ email ~ ", '@', 1)" -%}
    case when {{ email }} like '%_@_%' and {{ email }} not like '%@%@%' then
        -- the address itself when there is nothing to strip (no '+', a domain without special rules); any doubt
        -- takes the full computation
        case when not (strpos({{ email }}, '+') > 0 or {{ idlink.email_domain_in(email, (dotless + ['googlemail.com']) | unique | list) }})
             then {{ email }}
             else
                case when {{ idlink.email_domain_in(email, dotless) }}
                     then replace(case when {{ idlink.honours_plus(email, plus) }}
                                       then split_part({{ local }}, '+', 1) else {{ local }} end, '.', '')
                     when {{ idlink.honours_plus(email, plus) }}
                     then split_part({{ local }}, '+', 1)
                     else {{ local }} end
                || '@' || case when {{ email }} like '%@googlemail.com' then 'gmail.com' else split_part({{ email }}, '@', 2) end
        end
    end
{%- endmacro %}

{# Whether a single-'@' address is at one of `domains`. #}
{% macro email_domain_in(email, domains) -%}
    {%- if domains -%}
    ({% for d in domains %}{{ email }} like '%@{{ d | replace("'", "''") }}'{{ " or " if not loop.last }}{% endfor %})
    {%- else -%}false{%- endif -%}
{%- endmacro %}

{# '*' in plus_addressing_domains: every domain's +tag is a sub-address. #}
{% macro honours_plus(email, plus) -%}
    {%- if '*' in plus -%}true{%- else -%}{{ idlink.email_domain_in(email, plus) }}{%- endif -%}
{%- endmacro %}

{# Names and places: case-folded, accent-free, punctuation to spaces, whitespace collapsed. An oversized value
   (flagged by ingestion) is no name: it gets no key rather than matching on garbage. Neither form has a space at
   either end (the fast one matches no such value), so only an empty result is turned into null. #}
{% macro normalize_name(expr) -%}
    {%- set slow = "trim(regexp_replace(lower(" ~ idlink.strip_accents(expr) ~ "), '[^a-z0-9]+', ' ', 'g'))" -%}
    nullif(case when length({{ expr }}) <= {{ var('max_name_length') }} then {{ idlink.when_matching(expr, '[A-Za-z0-9]+( [A-Za-z0-9]+)*', "lower(" ~ expr ~ ")", slow) }} end, '')
{%- endmacro %}

{# `fast` when `expr` fully matches `pattern`, else `otherwise`; both must give the same value for a matching
   input. Most values are plain ASCII words, for which accent stripping and a global regex replace are no-ops
   that cost several times more than one full match. Engines without the shortcut always take
   `otherwise`. #}
{% macro when_matching(expr, pattern, fast, otherwise) -%}{{ return(adapter.dispatch('when_matching', 'idlink')(expr, pattern, fast, otherwise)) }}{%- endmacro %}
{% macro default__when_matching(expr, pattern, fast, otherwise) -%}{{ otherwise }}{%- endmacro %}
{% macro duckdb__when_matching(expr, pattern, fast, otherwise) -%}
    case when regexp_full_match({{ expr }}, '{{ pattern }}') then {{ fast }} else {{ otherwise }} end
{%- endmacro %}

{# A passed-through text field, or null when it is oversized (ingestion flags it): such a value is no name or
   address, and copying it into every model that reads it costs more than the whole rest of the row. #}
{% macro bounded_text(expr) -%}
    case when length({{ expr }}) <= {{ var('max_name_length') }} then {{ expr }} end
{%- endmacro %}

{# Postal codes compare without spaces, dashes or case ("SW1A 1AA" = "sw1a1aa"); as no space is left, only an empty
   result becomes null. #}
{% macro normalize_postal_code(expr) -%}
    nullif({{ idlink.when_matching(expr, '[A-Z0-9]*', expr, "regexp_replace(upper(" ~ expr ~ "), '[^A-Z0-9]', '', 'g')") }}, '')
{%- endmacro %}

{# Phones arrive as E.164 from ingestion (phonenumbers); only blanks are cleaned here. #}
{% macro normalize_phone(expr) -%}
    {{ idlink.blank_to_null(expr) }}
{%- endmacro %}

{# Consonant skeleton: first letter + the next three consonants (vowels, h, w, y and spaces dropped), e.g.
   "hawkins" -> "hwkn". A typo in a vowel or late in the name keeps the key, so it is a blocking key for
   fuzzy matching. Staging computes it once per distinct family name (macro name_keys). #}
{% macro phonetic_key(expr) -%}
    left({{ expr }}, 1) || left(regexp_replace(substr({{ expr }}, 2), '[aeiouyhw ]+', '', 'g'), 3)
{%- endmacro %}

{# The consonant skeleton of a normalised street's name: its house number in front and any number after it left
   out ("12 calder crescent" and "calder cresent 12" -> "cldr"). A blocking key with the postal code or the city
   that survives typos in the street name; computed once per row in staging (a regular expression per key
   scan would cost more). #}
{% macro street_phonetic(expr) -%}
    {%- set name = "ltrim(" ~ expr ~ ", '0123456789 ')" -%}
    nullif(left({{ name }}, 1) || left(regexp_replace(substr({{ name }}, 2), '[aeiouyhw 0-9]+', '', 'g'), 3), '')
{%- endmacro %}

{# House number: the first run of digits of a normalised street ("31 meganboulevard", "meganboulevard 31" -> "31"),
   null when there is none. A blocking key with the city or postal code that survives typos in the street name. #}
{% macro street_number(expr) -%}{{ return(adapter.dispatch('street_number', 'idlink')(expr)) }}{%- endmacro %}

{% macro default__street_number(expr) -%}
    nullif(regexp_extract({{ expr }}, '[0-9]+'), '')
{%- endmacro %}

{% macro postgres__street_number(expr) -%}
    substring({{ expr }} from '[0-9]+')
{%- endmacro %}

{# Line `n` (1 or 2) of a street that may span lines (Salesforce's MailingStreet, B2C's streetAddress: a building or
   an estate on a line of its own): the first line, or the whole value when it has one line; the second line, or
   null. chr(10) and split_part read the same in DuckDB, Postgres and Spark. #}
{% macro address_line(expr, n) -%}
    case when position(chr(10) in {{ expr }}) > 0
         then split_part(replace({{ expr }}, chr(13), ''), chr(10), {{ n }})
         {%- if n == 1 %} else {{ expr }}{% endif %} end
{%- endmacro %}
