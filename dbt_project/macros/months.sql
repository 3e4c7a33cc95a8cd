{#- The month window of a run. Dagster passes the partition range as vars start_month/end_month
    ('YYYY-MM'); a plain `dbt build` passes none and every month is (re)built. Var
    held_back_months (a list of 'YYYY-MM') takes months out of the window: months of the run whose
    upstream error-level quality gate failed (orchestration/quality/holds.py). -#}

{#- SQL list of the held-back months, or none. -#}
{% macro held_back_months_sql() -%}
    {%- set held = var('held_back_months', []) -%}
    {%- if held -%}
        ({% for month in held %}'{{ month }}'{% if not loop.last %}, {% endif %}{% endfor %})
    {%- endif -%}
{%- endmacro %}

{#- A boolean SQL expression: is this 'YYYY-MM' text column inside the run's window? -#}
{% macro in_month_window(month_text_col) -%}
    {%- set start, end = var('start_month', none), var('end_month', none) -%}
    {%- set held = held_back_months_sql() -%}
    ({% if start %}{{ month_text_col }} >= '{{ start }}'{% else %}true{% endif %}
     and {% if end %}{{ month_text_col }} <= '{{ end }}'{% else %}true{% endif %}
     {%- if held %} and {{ month_text_col }} not in {{ held }}{% endif %})
{%- endmacro %}

{#- The same window for a DATE column holding the first day of a month. -#}
{% macro in_month_date_window(month_date_col) -%}
    {%- set start, end = var('start_month', none), var('end_month', none) -%}
    {%- set held = held_back_months_sql() -%}
    ({% if start %}{{ month_date_col }} >= cast('{{ start }}-01' as date){% else %}true{% endif %}
     and {% if end %}{{ month_date_col }} <= cast('{{ end }}-01' as date){% else %}true{% endif %}
     {%- if held %} and {{ month_key(month_date_col) }} not in {{ held }}{% endif %})
{%- endmacro %}

{#- Pre-hook of every monthly incremental model: re-running a month replaces it, never adds to
    it, even when the month now yields no rows at all (which delete+insert by key would miss). -#}
{% macro delete_month_window(month_col, is_date=false) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where
        {% if is_date %}{{ in_month_date_window(month_col) }}{% else %}{{ in_month_window(month_col) }}{% endif %}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#- 'YYYY-MM' text of a timestamp or date, the partition key format. -#}
{% macro month_key(expr) -%}
    {{ return(adapter.dispatch('month_key', 'nexcart')(expr)) }}
{%- endmacro %}
{% macro default__month_key(expr) -%}
    date_format({{ expr }}, 'yyyy-MM')
{%- endmacro %}
{% macro duckdb__month_key(expr) -%}
    strftime({{ expr }}, '%Y-%m')
{%- endmacro %}
