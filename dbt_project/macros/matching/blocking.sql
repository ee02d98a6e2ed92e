{# Blocking: which (identity, contact) pairs are looked at, at all. A pair is a candidate when it shares one key of
   a deterministic rule (var deterministic_rules) or of the match model (var match_blocking); no other pair is
   ever compared. Each side is narrowed to the columns keys and comparisons read and given a numeric row key
   (`pair_row`, a hash of its primary key), so each key is an equality join that carries two numbers and pairs
   are deduplicated on numbers; only then are both sides joined back and flattened into one row per pair (each
   side's columns suffixed _i and _c). (Two records whose hashes collided would bring along pairs that share no
   key; such a pair is compared and scored like any other, so nothing checks for it.) #}

{# The (identity column, contact column) pairs one entry of a blocking key compares, any of which may be equal: a
   name (the same column on both sides), `{identity: col, contact: col}`, or `{any: [a, b]}` (either equal, so
   keys that differ in one column are one join rather than two that find mostly the same pairs). #}
{% macro blocking_column_pairs(column) -%}
    {%- if column is mapping and 'any' in column -%}
        {%- set pairs = [] -%}
        {%- for name in column['any'] -%}{%- do pairs.append([name, name]) -%}{%- endfor -%}
        {{ return(pairs) }}
    {%- elif column is mapping -%}
        {{ return([[column['identity'], column['contact']]]) }}
    {%- else -%}
        {{ return([[column, column]]) }}
    {%- endif -%}
{%- endmacro %}

{# The deterministic rules' keys. #}
{% macro rule_keys() -%}
    {%- set keys = [] -%}
    {%- for rule in var('deterministic_rules') -%}
        {%- for key in rule['blocking'] if key not in keys -%}{%- do keys.append(key) -%}{%- endfor -%}
    {%- endfor -%}
    {{ return(keys) }}
{%- endmacro %}

{# The keys training learns m from, by number (blocked_by_<n>): every blocking key (the deterministic rules', then
   var match_blocking, then var match_blocking_unmatched). #}
{% macro training_keys() -%}
    {{ return(idlink.blocking_keys()) }}
{%- endmacro %}

{# Every blocking key, once: the deterministic rules', var match_blocking, var match_blocking_unmatched. #}
{% macro blocking_keys() -%}
    {%- set keys = idlink.rule_keys() -%}
    {%- for key in var('match_blocking') + var('match_blocking_unmatched') if key not in keys -%}
        {%- do keys.append(key) -%}
    {%- endfor -%}
    {{ return(keys) }}
{%- endmacro %}

{# The condition that a pair shares `key`: every entry holds. `i` and `c` render a column of either side
   (e.g. 'i.{}' for a join of the two sides, 'p.{}_i' for a flattened pair row). #}
{% macro key_condition(key, i='i.{}', c='c.{}') -%}
    {%- set terms = [] -%}
    {%- for column in key -%}
        {%- set alternatives = [] -%}
        {%- for pair in idlink.blocking_column_pairs(column) -%}
            {%- do alternatives.append(i.format(pair[0]) ~ ' = ' ~ c.format(pair[1])) -%}
        {%- endfor -%}
        {%- do terms.append(alternatives[0] if alternatives | length == 1 else '(' ~ alternatives | join(' or ') ~ ')') -%}
    {%- endfor -%}
    {{ return('(' ~ terms | join(' and ') ~ ')') }}
{%- endmacro %}

{# Columns computed where a key or comparison reads them rather than stored in the intermediate tables: storing a
   column of a million rows costs more than deriving it in the few scans that read it. #}
{% macro derived_pair_columns() -%}
    {{ return({
        'given_initial': 'left(given_name_key, 1)',
        'family_initial': 'left(family_name_key, 1)',
        'street_name': idlink.street_name(''),
        'email_local_part': "case when email like '%_@_%' then split_part(email, '@', 1) end",
    }) }}
{%- endmacro %}

{# A row's normalised street without its house number ("12 calder crescent" -> "calder crescent"), or null when
   nothing else is left. `r` is the row's alias with its dot, or '' for unqualified columns. #}
{% macro street_name(r) -%}
    nullif(trim(coalesce(replace({{ r }}street_key, {{ r }}street_number, ''), {{ r }}street_key)), '')
{%- endmacro %}

{# Columns one side ('identity' or 'contact') needs: its primary key, every column of the deterministic rules' keys
   (or, with `all_keys`, of every key), what the comparisons read (macro comparison_columns) and the pair context.
   A pair row carries only these; the side itself all of every key too (macro side_columns). #}
{% macro pair_side_columns(side, all_keys=false) -%}
    {%- set columns = ['identity_provider', 'identity_id'] if side == 'identity' else ['crm', 'contact_id'] -%}
    {%- set keys = idlink.blocking_keys() if all_keys else idlink.rule_keys() -%}
    {%- for key in keys -%}
        {%- for column in key -%}
            {%- for pair in idlink.blocking_column_pairs(column) -%}
                {%- set name = pair[0] if side == 'identity' else pair[1] -%}
                {%- if name not in columns -%}{%- do columns.append(name) -%}{%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- for name in idlink.comparison_columns() + ['email_valid'] if name not in columns -%}
        {%- do columns.append(name) -%}
    {%- endfor -%}
    {%- for context in idlink.pair_context() if context['side'] == side -%}
        {%- for name in context['reads'] if name not in columns -%}{%- do columns.append(name) -%}{%- endfor -%}
    {%- endfor -%}
    {{ return(columns) }}
{%- endmacro %}

{# One side narrowed to the numeric row key standing for it (`pair_row`) and its `columns` (derived ones
   computed). #}
{% macro pair_side(relation, primary_key, columns, filter=none) -%}
    {%- set derived = idlink.derived_pair_columns() -%}
    {%- set selected = [] -%}
    {%- for column in columns -%}
        {%- do selected.append(derived[column] ~ ' as ' ~ column if column in derived else column) -%}
    {%- endfor %}
    select
        {{ idlink.row_hash(primary_key) }} as pair_row,
        {{ selected | join(', ') }}
    from {{ relation }}
    {%- if filter %}
    where {{ filter }}
    {%- endif %}
{%- endmacro %}

{# CTEs identity_side and contact_side (each side narrowed, macro pair_side) and nickname_pairs. Inlined into each
   key's join by default (the build reads a few columns per key); `materialized`: computed once and kept, for
   readers that join every key to the same few rows (training's sample). `identity_sample`: only that many
   identities, drawn by their key (macro draw_order: the same data gives the same draw on every engine). #}
{% macro side_ctes(identities, contacts, materialized=false, identity_sample=none) -%}
    {%- set hint = idlink.materialized_cte() if materialized else idlink.inlined_cte() %}
identity_side as {{ hint }} (
    {%- if identity_sample is not none %}
    select * from (
        {{ idlink.pair_side(identities, ['identity_provider', 'identity_id'], idlink.pair_side_columns('identity', all_keys=true)) }}
    ) as drawn
    order by {{ idlink.draw_order(['identity_provider', 'identity_id']) }}
    limit {{ identity_sample }}
    {%- else %}
    {{ idlink.pair_side(identities, ['identity_provider', 'identity_id'], idlink.pair_side_columns('identity', all_keys=true)) }}
    {%- endif %}
),

contact_side as {{ hint }} (
    {{ idlink.pair_side(contacts, ['crm', 'contact_id'], idlink.pair_side_columns('contact', all_keys=true), 'not is_deleted') }}
),

nickname_pairs as (
    {{ idlink.nickname_pairs() }}
)
{%- endmacro %}

{# CTEs <prefix>pair_rows (each pair of a row of `identities` and a row of `contacts` sharing one of `keys`, once,
   less the pairs of the relations `excluded`) and <prefix>paired_rows (both sides joined back from identity_side and
   contact_side and flattened: identity_row, contact_row, identity_provider, identity_id, crm, contact_id, every
   side column as <column>_i and <column>_c, the pair context and the nickname flags the comparisons read; with
   `key_flags`, one blocked_by_<n> per key of macro training_keys). With `random_records`, the pairs are instead
   every one of that many identities with every one of that many contacts, each drawn by its key (macro
   draw_order; training's random pairs). #}
{% macro paired_rows_ctes(prefix, identities, contacts, keys, key_flags=false, random_records=none, excluded=none) -%}
{{ prefix }}pair_rows as (
    {%- if random_records %}
    select i.pair_row as identity_row, c.pair_row as contact_row
    from (select pair_row from {{ identities }}
          order by {{ idlink.draw_order(['identity_provider', 'identity_id']) }} limit {{ random_records }}) as i
    cross join (select pair_row from {{ contacts }}
                order by {{ idlink.draw_order(['crm', 'contact_id']) }} limit {{ random_records }}) as c
    {%- else %}
    select distinct hits.identity_row, hits.contact_row
    from (
        {%- for key in keys %}
        select i.pair_row as identity_row, c.pair_row as contact_row
        from {{ identities }} as i
        inner join {{ contacts }} as c
            on {{ idlink.key_condition(key) }}
        {% if not loop.last %}union all{% endif %}
        {%- endfor %}
    ) as hits
    {%- for relation in excluded or [] %}
    {{ 'where' if loop.first else 'and' }} not exists (
        select 1 from {{ relation }} as e where e.identity_row = hits.identity_row and e.contact_row = hits.contact_row)
    {%- endfor %}
    {%- endif %}
),

{{ prefix }}paired_rows as (
    select
        p.identity_row,
        p.contact_row,
        i.identity_provider,
        i.identity_id,
        c.crm,
        c.contact_id,
        {%- for context in idlink.pair_context() %}
        {{ context['expr'] }} as {{ context['name'] }},
        {%- endfor %}
        {%- for column in idlink.pair_side_columns('identity', all_keys=key_flags) %}
        i.{{ column }} as {{ column }}_i,
        {%- endfor %}
        {%- for column in idlink.pair_side_columns('contact', all_keys=key_flags) %}
        c.{{ column }} as {{ column }}_c,
        {%- endfor %}
        {%- for column in idlink.nickname_columns() %}
        nick_{{ column }}.name_a is not null as {{ column }}_nickname
        {%- if not loop.last or key_flags %},{% endif %}
        {%- endfor %}
        {%- if key_flags %}
        {%- for key in idlink.training_keys() %}
        coalesce({{ idlink.key_condition(key) }}, false) as blocked_by_{{ loop.index }}{{ ',' if not loop.last }}
        {%- endfor %}
        {%- endif %}
    from {{ prefix }}pair_rows as p
    inner join identity_side as i on i.pair_row = p.identity_row
    inner join contact_side as c on c.pair_row = p.contact_row
    {%- for column in idlink.nickname_columns() %}
    left join nickname_pairs as nick_{{ column }}
        on nick_{{ column }}.name_a = i.{{ column }} and nick_{{ column }}.name_b = c.{{ column }}
    {%- endfor %}
)
{%- endmacro %}

{# First names that may stand for the same person, both ways (name_a, name_b; never equal): their canonical names
   in the nickname seed overlap ("bill" and "will" both stand for "william"). Every canonical name is itself a
   name of the seed (a data test on the seed), so a name the seed does not know pairs with none. One row per
   pair, so a pair joins it once. #}
{% macro nickname_pairs() -%}
    select distinct a.name as name_a, b.name as name_b
    from {{ ref('nickname_equivalents') }} as a
    inner join {{ ref('nickname_equivalents') }} as b
        on b.canonical_name = a.canonical_name and b.name <> a.name
{%- endmacro %}

{# What the one-to-one assignment and the golden table read of both sides besides the verdict: whether the identity
   may be linked at all, whether each side already carries the other's id (what several contacts of one
   identity are ordered by first, and what the reverse ETL still has to write), and the contact's dates. Carried
   with each pair (`name`: `expr` over the sides `i` and `c`, reading the side's columns `reads`), so later
   models need not join both sides again. #}
{% macro pair_context() -%}
    {{ return([
        {'name': 'identity_may_link', 'side': 'identity', 'reads': ['consent_state', 'is_deleted'],
         'expr': idlink.linkable_identity('i')},
        {'name': 'identity_holds_contact_id', 'side': 'identity', 'reads': ['carried_contact_id'],
         'expr': idlink.holds_id('i.carried_contact_id', 'c.contact_id')},
        {'name': 'contact_holds_identity_id', 'side': 'contact', 'reads': ['external_user_id'],
         'expr': idlink.holds_id('c.external_user_id', 'i.identity_id')},
        {'name': 'contact_last_modified_at', 'side': 'contact', 'reads': ['last_modified_at'],
         'expr': 'c.last_modified_at'},
        {'name': 'contact_created_at', 'side': 'contact', 'reads': ['created_at'], 'expr': 'c.created_at'},
    ]) }}
{%- endmacro %}

{# Whether a side holds the other's id: the id it carries is that one. Carrying none holds nothing (false, not
   unknown), so the id is still to be written. #}
{% macro holds_id(carried, id) -%}
    coalesce({{ carried }} = {{ id }}, false)
{%- endmacro %}
