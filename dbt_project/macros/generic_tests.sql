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
