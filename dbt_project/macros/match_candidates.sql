{# Candidate pairs of the configured match rules (var match_rules), in steps:

   candidate_pair_ctes: every (identity, contact) pair that shares a blocking key of some rule, once, whichever
   keys it shares; a rule that rejects nothing only keeps pairs that meet the preconditions of its requirements
   (`rule_block_filter`), which drops most chance pairs of weak keys early. Each side is narrowed to the columns
   the keys and comparisons read and given a numeric row key (`pair_row`, a hash of its primary key), so each
   blocking key is an equality join that carries two numbers and pairs are deduplicated on numbers. Only then
   are the pairs joined back to their rows, and each pair gets one flag per rule (`blocked_by_rule_<n>`: it
   shares one of that rule's keys, compared on the real values), its similarity features (`pair_features`,
   `name_place_parts`) and, when the family names are equal, how often that name occurs on either side.

   match_candidates: each pair's strongest rule that emits it, found in one pass. A rule emits a pair it blocks
   when all its `require` comparisons hold, or when a `reject` comparison holds (then `rejected_reason` is set
   and the pair must never be linked); every pair appears once. A rule only emits pairs it blocks, so rows that
   met through a hash collision alone (no shared key) are never emitted. #}

{# The (identity column, contact column) pairs one entry of a blocking key compares, any of which may be
   equal: a name (the same column on both sides), `{identity: col, contact: col}`, or `{any: [a, b]}` (either
   equal, so keys that differ in one column are one join, equal on the rest and that one a filter, rather than
   two that each find mostly the same pairs). #}
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

{# One join condition per blocking key of `rule`: every entry of the key holds (macro blocking_column_pairs). #}
{% macro rule_blocking_terms(rule) -%}
    {%- set keys = [] -%}
    {%- for key in rule['blocking'] -%}
        {%- set terms = [] -%}
        {%- for column in key -%}
            {%- set alternatives = [] -%}
            {%- for pair in idlink.blocking_column_pairs(column) -%}
                {%- do alternatives.append("i." ~ pair[0] ~ " = c." ~ pair[1]) -%}
            {%- endfor -%}
            {%- do terms.append(alternatives[0] if alternatives | length == 1 else '(' ~ alternatives | join(' or ') ~ ')') -%}
        {%- endfor -%}
        {%- do keys.append('(' ~ terms | join(' and ') ~ ')') -%}
    {%- endfor -%}
    {{ return(keys) }}
{%- endmacro %}

{# The condition a pair must meet on the blocking join of `rule`, or none: a rule that rejects nothing emits only
   pairs meeting all its requirements, so pairs failing a precondition of one of them are dropped there. A rule
   with a veto must see every pair it blocks. #}
{% macro rule_block_filter(rule, i, c) -%}
    {%- set conditions = [] -%}
    {%- if not rule.get('reject', {}) -%}
        {%- for name in rule.get('require', []) -%}
            {%- set condition = idlink.comparison_precondition(name, i, c) -%}
            {%- if condition and condition not in conditions -%}{%- do conditions.append(condition) -%}{%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(conditions | join(' and ') if conditions else none) }}
{%- endmacro %}

{# What the one-to-one assignment and the golden table read of both sides besides the rules' verdict: whether
   the identity may be linked at all, whether each side already carries the other's id (what several contacts
   of one identity are ordered by first, and what the reverse ETL still has to write), and the contact's dates.
   Carried with each pair (`name`: `expr` over the sides `i` and `c`, reading the side's columns `reads`), so
   later models need not join both sides again. #}
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

{# Columns one side ('identity' or 'contact') needs: every blocking column of every rule, the features and the
   pair context. #}
{% macro pair_side_columns(rules, side) -%}
    {%- set columns = [] -%}
    {%- for rule in rules -%}
        {%- for key in rule['blocking'] -%}
            {%- for column in key -%}
                {%- for pair in idlink.blocking_column_pairs(column) -%}
                    {%- set name = pair[0] if side == 'identity' else pair[1] -%}
                    {%- if name not in columns -%}{%- do columns.append(name) -%}{%- endif -%}
                {%- endfor -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- for name in idlink.pair_feature_columns() -%}
        {%- if name not in columns -%}{%- do columns.append(name) -%}{%- endif -%}
    {%- endfor -%}
    {%- for context in idlink.pair_context() if context['side'] == side -%}
        {%- for name in context['reads'] if name not in columns -%}{%- do columns.append(name) -%}{%- endfor -%}
    {%- endfor -%}
    {{ return(columns) }}
{%- endmacro %}

{# Blocking columns computed where a rule uses them rather than stored in the intermediate tables: storing a
   column of a million rows costs more than deriving it in the few scans that read it. #}
{% macro derived_pair_columns() -%}
    {{ return({'given_initial': 'left(given_name_key, 1)', 'family_initial': 'left(family_name_key, 1)'}) }}
{%- endmacro %}

{# One side narrowed to its primary key, the numeric row key standing for it (`pair_row`) and `columns`
   (the key's columns among them are not repeated; derived ones computed). #}
{% macro pair_side(relation, primary_key, columns, filter=none) -%}
    {%- set derived = idlink.derived_pair_columns() -%}
    {%- set selected = [] -%}
    {%- for column in primary_key + (columns | reject('in', primary_key) | list) -%}
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

{# CTEs identity_side, contact_side, block_hits, pair_rows, family_name_counts, nickname_pairs, pair_features and
   candidate_pairs (one row per pair). #}
{% macro candidate_pair_ctes(identities, contacts, rules=none) -%}
    {%- set rules = rules if rules is not none else var('match_rules') -%}
    {%- set all_keys = [] -%}
    {%- for rule in rules -%}
        {%- set filter = idlink.rule_block_filter(rule, 'i', 'c') -%}
        {%- for key in idlink.rule_blocking_terms(rule) -%}
            {%- do all_keys.append(key ~ (' and ' ~ filter if filter else '')) -%}
        {%- endfor -%}
    {%- endfor %}
identity_side as not materialized (
    {{ idlink.pair_side(identities, ['identity_provider', 'identity_id'], idlink.pair_side_columns(rules, 'identity')) }}
),

contact_side as not materialized (
    {{ idlink.pair_side(contacts, ['crm', 'contact_id'], idlink.pair_side_columns(rules, 'contact'), 'not is_deleted') }}
),

-- one row per (pair, blocking key) it shares, less those its rule's preconditions rule out
block_hits as (
    {%- for key in all_keys %}
    select i.pair_row as identity_row, c.pair_row as contact_row
    from identity_side as i
    inner join contact_side as c
        on {{ key }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

pair_rows as (
    select distinct identity_row, contact_row from block_hits
),

-- how often each family name occurs among all identities and contacts: a name almost nobody else has is
-- stronger evidence when it agrees
family_name_counts as (
    select family_name_key, count(*) as family_name_count
    from (
        select family_name_key from identity_side
        union all
        select family_name_key from contact_side
    ) as names
    where family_name_key is not null
    group by family_name_key
),

nickname_pairs as (
    {{ idlink.nickname_pairs() }}
),

pair_features as (
    select
        i.identity_provider,
        i.identity_id,
        c.crm,
        c.contact_id,
        case when i.family_name_key = c.family_name_key then names.family_name_count end as family_name_count,
        {%- for context in idlink.pair_context() %}
        {{ context['expr'] }} as {{ context['name'] }},
        {%- endfor %}
        {%- for rule in rules %}
        coalesce({{ idlink.rule_blocking_terms(rule) | join(' or ') }}, false) as blocked_by_rule_{{ loop.index }},
        {%- endfor %}
{{ idlink.pair_features('i', 'c', 'nick', idlink.settled_by_early_rules(rules)) }}
    from pair_rows as p
    inner join identity_side as i on i.pair_row = p.identity_row
    inner join contact_side as c on c.pair_row = p.contact_row
    left join family_name_counts as names on names.family_name_key = i.family_name_key
    left join nickname_pairs as nick
        on nick.given_name_a = i.given_name_key and nick.given_name_b = c.given_name_key
),

candidate_pairs as (
    select
        pair_features.*,
{{ idlink.name_place_parts('pair_features') }}
    from pair_features
)
{%- endmacro %}

{# Whether `rule` emits the pair `p`: all its requirements hold, or one of its vetoes does. #}
{% macro rule_emits(rule, rule_rank, p) -%}
    {%- set required = [] -%}
    {%- for name in rule.get('require', []) -%}
        {%- do required.append(idlink.comparison(name, p)) -%}
    {%- endfor -%}
    ({{ p }}.blocked_by_rule_{{ rule_rank }} and (({{ required | join(' and ') if required else 'true' }})
        {%- for name in rule.get('reject', {}).keys() %}
        or {{ idlink.comparison(name, p) }}
        {%- endfor %}))
{%- endmacro %}

{% macro match_candidates(pairs, rules=none) -%}
    {%- set rules = rules if rules is not none else var('match_rules') -%}
    {%- set ns = namespace(rejections=false) -%}
    {%- for rule in rules -%}{%- if rule.get('reject', {}) -%}{%- set ns.rejections = true -%}{%- endif -%}{%- endfor %}
    select
        p.identity_provider,
        p.identity_id,
        p.crm,
        p.contact_id,
        case p.rule_rank
            {%- for rule in rules %}
            when {{ loop.index }} then '{{ rule["name"] }}'
            {%- endfor %}
        end as match_rule,
        p.rule_rank,
        {%- for context in idlink.pair_context() %}
        p.{{ context['name'] }},
        {%- endfor %}
        cast(case p.rule_rank
            {%- for rule in rules %}
            when {{ loop.index }} then {{ rule['confidence'] if rule['confidence'] is number else idlink.score(rule['confidence'], 'p') }}
            {%- endfor %}
        end as double precision) as match_confidence,
        case p.rule_rank
            {%- for rule in rules %}
            when {{ loop.index }} then '{{ rule.get("on_tie", "conflict") }}'
            {%- endfor %}
        end as on_tie,
        {% if ns.rejections -%}
        case
            {%- for rule in rules %}
            {%- set rule_rank = loop.index %}
            {%- for name, reason in rule.get('reject', {}).items() %}
            when p.rule_rank = {{ rule_rank }} and {{ idlink.comparison(name, 'p') }} then '{{ reason }}'
            {%- endfor %}
            {%- endfor %}
        end
        {%- else -%}
        cast(null as {{ dbt.type_string() }})
        {%- endif %} as rejected_reason
    from (
        select
            pairs.*,
            -- the strongest emitting rule (a CASE stops at the first that holds)
            case
                {%- for rule in rules %}
                when {{ idlink.rule_emits(rule, loop.index, 'pairs') }} then {{ loop.index }}
                {%- endfor %}
            end as rule_rank
        from {{ pairs }} as pairs
    ) as p
    where p.rule_rank is not null
{%- endmacro %}
