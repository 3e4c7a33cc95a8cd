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

{#- The config of every monthly table: incremental, and a run replaces the months of its window
    (pre-hook delete_month_window, then the model appends the window's rows). month_column is the
    table's month: 'YYYY-MM' text (`_month`), a DATE on the first of the month (is_date), or a
    DATE of any day whose month counts (by_month_of_day). A changed column list fails the run
    rather than being silently ignored: run `dbt build --full-refresh` after such a change. -#}
{% macro monthly_table_config(month_column, is_date=false, by_month_of_day=false) -%}
    {%- set month_sql = "month_start('" ~ month_column ~ "')" if by_month_of_day else "'" ~ month_column ~ "'" -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ delete_month_window(" ~ month_sql ~ ", is_date=" ~ (is_date or by_month_of_day) ~ ") }}",
        tags=['monthly'],
    ) }}
{%- endmacro %}
