{# Text normalisation shared by every staging model; dispatched so DuckDB and Postgres give the same keys. #}

{% macro nfc(expr) -%}{{ return(adapter.dispatch('nfc', 'idlink')(expr)) }}{%- endmacro %}
{% macro default__nfc(expr) -%}nfc_normalize({{ expr }}){%- endmacro %}
{% macro postgres__nfc(expr) -%}normalize({{ expr }}, NFC){%- endmacro %}

{# Accents removed from text in any Unicode normal form ("José" composed or decomposed -> "Jose"): the text
   decomposed (NFD) and its combining marks dropped. Letters that decompose into no base letter (ß, ø, ł, æ) stay:
   macro fold_letters spells them in plain letters. #}
{% macro strip_accents(expr) -%}{{ return(adapter.dispatch('strip_accents', 'idlink')(expr)) }}{%- endmacro %}
{% macro default__strip_accents(expr) -%}strip_accents({{ idlink.nfc(expr) }}){%- endmacro %}
{# DuckDB's strip_accents decomposes before it drops the marks, and every normal form of a text decomposes alike,
   so composing first (NFC) would change nothing and doubles the cost. #}
{% macro duckdb__strip_accents(expr) -%}strip_accents({{ expr }}){%- endmacro %}
{# The marks of the combining blocks every script shares (diacritical marks, their extension and supplement, those
   for symbols, half marks): what Latin, Greek and Cyrillic letters decompose into. (The unaccent extension is not
   used: it also spells out letters and symbols DuckDB leaves alone, e.g. ß as ss and ½ as 1/2, so the two engines
   would key "Straße" differently.) A mark of another script's own block after a Latin letter, which no name
   holds, splits the word here and not on DuckDB. #}
{% macro postgres__strip_accents(expr) -%}
    regexp_replace(normalize({{ expr }}, NFD), '[\u0300-\u036f\u1ab0-\u1ace\u1dc0-\u1dff\u20d0-\u20f0\ufe20-\ufe2f]', '', 'g')
{%- endmacro %}

{# Latin letters without a base letter to decompose into, spelt in plain letters the way they are transliterated
   ("Straße" -> "Strasse", "Øre" -> "Ore", "Łódź" -> "Lodz", "Ærø" -> "Aero"), by the same SQL on every engine.
   `expr` is accent-free (macro strip_accents), so a letter with both a stroke and an accent is found by its
   stroke. Upper and lower case are both listed: Postgres lower-cases no letter beyond ASCII under the C locale. #}
{% macro fold_letters(expr) -%}
    {%- set single = {
        'a': 'Ⱥ', 'b': 'ƀƁƂƃɃ', 'c': 'ƇƈȻȼ', 'd': 'ÐðĐđƉƊƋƌȡ', 'e': 'ƐɆɇ', 'f': 'Ƒƒ', 'g': 'ƓǤǥ', 'h': 'Ħħ',
        'i': 'ıƖƗ', 'j': 'ȷɈɉ', 'k': 'Ƙƙ', 'l': 'ĿŀŁłƚȴȽ', 'n': 'ŉŊŋƝƞȵ', 'o': 'Øø', 'p': 'Ƥƥ', 'q': 'ĸ',
        'r': 'Ɍɍ', 's': 'ſȿ', 't': 'ŦŧƫƬƭƮȶȾ', 'u': 'Ʉ', 'v': 'Ʋ', 'y': 'ƳƴɎɏ', 'z': 'ƵƶȤȥɀ',
    } -%}
    {%- set multiple = {
        'ae': 'Ææ', 'db': 'ȸ', 'dz': 'ǄǅǆǱǲǳ', 'hv': 'ƕ', 'ij': 'Ĳĳ', 'lj': 'Ǉǈǉ', 'nj': 'Ǌǋǌ', 'oe': 'Œœ',
        'oi': 'Ƣƣ', 'qp': 'ȹ', 'ss': 'ßẞ', 'th': 'Þþ',
    } -%}
    {#- one translate spells the single letters and turns each group of `multiple` into its first letter, which one
        replace per group then spells -#}
    {%- set ns = namespace(from='', to='') -%}
    {%- for plain, letters in single.items() -%}
        {%- set ns.from = ns.from ~ letters -%}{%- set ns.to = ns.to ~ plain * (letters | length) -%}
    {%- endfor -%}
    {%- for letters in multiple.values() -%}
        {%- set ns.from = ns.from ~ letters -%}{%- set ns.to = ns.to ~ letters[0] * (letters | length) -%}
    {%- endfor -%}
    {%- set sql = namespace(text="translate(" ~ expr ~ ", '" ~ ns.from ~ "', '" ~ ns.to ~ "')") -%}
    {%- for plain, letters in multiple.items() -%}
        {%- set sql.text = "replace(" ~ sql.text ~ ", '" ~ letters[0] ~ "', '" ~ plain ~ "')" -%}
    {%- endfor -%}
    {{ sql.text }}
{%- endmacro %}

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

{# A name written in a script without Latin letters (Arabic, Hebrew, Cyrillic, CJK...), which normalize_name
   reduces to nothing: case-folded with its spaces collapsed, so it still compares with itself and differs from any
   other name (a family's mailbox shared by a Latin and a non-Latin first name is vetoed like any other). #}
{% macro name_in_any_script(expr) -%}
    case when length({{ expr }}) <= {{ var('max_name_length') }}
         then nullif(trim(regexp_replace(lower({{ expr }}), '\s+', ' ', 'g')), '') end
{%- endmacro %}

{# Names and places: case-folded, accent-free, letters spelt out (macro fold_letters), punctuation to spaces,
   whitespace collapsed. An oversized value (flagged by ingestion) is no name: it gets no key rather than matching
   on garbage. Neither form has a space at either end (the fast one matches no such value), so only an empty result
   is turned into null. #}
{% macro normalize_name(expr) -%}
    {%- set slow = "trim(regexp_replace(lower(" ~ idlink.fold_letters(idlink.strip_accents(expr)) ~ "), '[^a-z0-9]+', ' ', 'g'))" -%}
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
