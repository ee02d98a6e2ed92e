{# Rows whose combination of columns is not unique; an optional where restricts the rows considered. #}
{% test unique_combination(model, columns, where=none) %}
    select {{ columns | join(', ') }}, count(*) as occurrences
    from {{ model }}
    {% if where %}where {{ where }}{% endif %}
    group by {{ columns | join(', ') }}
    having count(*) > 1
{% endtest %}

{# Values outside [min_value, max_value]. #}
{% test between(model, column_name, min_value, max_value) %}
    select {{ column_name }} from {{ model }}
    where {{ column_name }} < {{ min_value }} or {{ column_name }} > {{ max_value }}
{% endtest %}

{# Values longer than max_length characters, in one column or (as a model test) in any of `columns`: one scan for
   all of them, which matters on a view. #}
{% test max_length(model, max_length, column_name=none, columns=none) %}
    {%- set checked = columns if columns else [column_name] %}
    select {{ checked | join(', ') }} from {{ model }}
    where {% for column in checked %}length({{ column }}) > {{ max_length }}{% if not loop.last %} or {% endif %}{% endfor %}
{% endtest %}

{# Rows where any of `columns` is null: one scan for all of them, which matters on a view. #}
{% test not_null_columns(model, columns) %}
    select {{ columns | join(', ') }} from {{ model }}
    where {% for column in columns %}{{ column }} is null{% if not loop.last %} or {% endif %}{% endfor %}
{% endtest %}

{# Rows whose identity may not be linked: no granted CRM-sync consent, or deleted (dbt's `where` config narrows
   the rows checked). A mart test that guards the push: nothing reaches a CRM for such an identity. #}
{% test consented_identities(model) %}
    with checked as (
        select identity_provider, identity_id from {{ model }}
    )
    select c.identity_provider, c.identity_id
    from checked as c
    left join {{ ref('int_identities') }} as i
        on i.identity_provider = c.identity_provider and i.identity_id = c.identity_id
    where i.identity_id is null or not ({{ idlink.linkable_identity('i') }})
{% endtest %}

{# Pairs of link_evidence whose contributions do not add up to their match weight. #}
{% test weights_add_up_to_the_match_weight(model) %}
    select identity_provider, identity_id, crm, contact_id, max(match_weight) as match_weight, sum(weight) as total
    from {{ model }}
    group by identity_provider, identity_id, crm, contact_id
    having abs(sum(weight) - max(match_weight)) > 1e-6
{% endtest %}

{# The latest build of match_decision_bands against the one before: a row when the share of auto-links or of
   review items moved by more than `max_shift` (absolute, of the identities that may be linked). #}
{% test decision_bands_stable(model, max_shift) %}
    with ordered as (
        select auto_link_share, review_share,
            row_number() over (order by built_at desc, invocation_id desc) as age
        from {{ model }}
    )
    select latest.auto_link_share, previous.auto_link_share as previous_auto_link_share,
        latest.review_share, previous.review_share as previous_review_share
    from ordered as latest
    inner join ordered as previous on previous.age = 2
    where latest.age = 1
        and (abs(coalesce(latest.auto_link_share, 0) - coalesce(previous.auto_link_share, 0)) > {{ max_shift }}
             or abs(coalesce(latest.review_share, 0) - coalesce(previous.review_share, 0)) > {{ max_shift }})
{% endtest %}

{# The rows of `model` (those matching `where`) against the same rows of `previous` (the last build's): fails when
   they fell to none, or from var min_links_to_judge rows by more than var max_active_link_drop, unless var
   accept_link_drop says a person accepted it. One row with both counts when it fails. #}
{% test volume_kept(model, previous, where='true') %}
    with

    current_rows as (select count(*) as row_count from {{ model }} where {{ where }}),

    previous_rows as (select count(*) as row_count from {{ previous }} where {{ where }})

    select previous_rows.row_count as previous_count, current_rows.row_count as current_count
    from current_rows cross join previous_rows
    where not {{ var('accept_link_drop') }}
        and ((previous_rows.row_count > 0 and current_rows.row_count = 0)
            or (previous_rows.row_count >= {{ var('min_links_to_judge') }}
                and current_rows.row_count < previous_rows.row_count * (1 - {{ var('max_active_link_drop') }})))
{% endtest %}
