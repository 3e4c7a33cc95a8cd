{#- Ratios, rates, shares and growth in the marts are DOUBLE, NULL when the denominator is 0 or
    NULL (growth over a month without revenue, a share of an empty month...). The numerator may
    be an exact DECIMAL expression (e.g. `gross - previous_gross`): it is cast only at the end. -#}
{% macro safe_ratio(num, den) -%}
    (cast({{ num }} as double) / nullif(cast({{ den }} as double), 0))
{%- endmacro %}
