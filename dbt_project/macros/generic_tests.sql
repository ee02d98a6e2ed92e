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

{# Values longer than max_length characters. #}
{% test max_length(model, column_name, max_length) %}
    select {{ column_name }} from {{ model }} where length({{ column_name }}) > {{ max_length }}
{% endtest %}
