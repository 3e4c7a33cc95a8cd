{#- Generic test: every non-NULL value of the column lies in [min_value, max_value] (either bound
    optional; inclusive unless inclusive=false). Fails with the offending values. -#}
{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}
    {%- set ge = '>=' if inclusive else '>' -%}
    {%- set le = '<=' if inclusive else '<' -%}
    select {{ column_name }} as value
    from {{ model }}
    where {{ column_name }} is not null
      and not (
          {% if min_value is not none %}{{ column_name }} {{ ge }} {{ min_value }}{% else %}true{% endif %}
          and {% if max_value is not none %}{{ column_name }} {{ le }} {{ max_value }}{% else %}true{% endif %}
      )
{% endtest %}
