{#- The month window of a run: {'start': 'YYYY-MM' or none, 'end': 'YYYY-MM' or none, 'held': a
    list of 'YYYY-MM'}. No window (a plain `dbt build`): every month is (re)built. `held` takes
    months out of the window: months of the run whose upstream error-level quality gate failed
    (orchestration/quality/holds.py).

    Dagster passes the window in environment variables NEXCART_DBT_START_MONTH, NEXCART_DBT_END_MONTH
    and NEXCART_DBT_HELD_BACK_MONTHS (comma-separated), read only while dbt executes, never while it
    parses: dbt parses the whole project again whenever --vars change (~4 s an invocation), and the
    window changes every run. By hand, vars start_month / end_month / held_back_months win. -#}
{% macro run_window() -%}
    {%- set start = var('start_month', none) -%}
    {%- set end = var('end_month', none) -%}
    {%- set held = var('held_back_months', none) -%}
    {%- if execute -%}
        {%- if start is none -%}{%- set start = env_var('NEXCART_DBT_START_MONTH', '') | trim or none -%}{%- endif -%}
        {%- if end is none -%}{%- set end = env_var('NEXCART_DBT_END_MONTH', '') | trim or none -%}{%- endif -%}
        {%- if held is none -%}
            {%- set held = (env_var('NEXCART_DBT_HELD_BACK_MONTHS', '') | trim).split(',') | map('trim') | select | list -%}
        {%- endif -%}
    {%- endif -%}
    {{ return({'start': start, 'end': end, 'held': held or []}) }}
{%- endmacro %}

{#- SQL list of the months in `held`, or nothing when it is empty. -#}
{% macro held_back_months_sql(held) -%}
    {%- if held -%}
        ({% for month in held %}'{{ month }}'{% if not loop.last %}, {% endif %}{% endfor %})
    {%- endif -%}
{%- endmacro %}

{#- A boolean SQL expression: is this 'YYYY-MM' text column inside the run's window? -#}
{% macro in_month_window(month_text_col) -%}
    {%- set window = run_window() -%}
    {%- set start, end, held = window['start'], window['end'], held_back_months_sql(window['held']) -%}
    ({% if start %}{{ month_text_col }} >= '{{ start }}'{% else %}true{% endif %}
     and {% if end %}{{ month_text_col }} <= '{{ end }}'{% else %}true{% endif %}
     {%- if held %} and {{ month_text_col }} not in {{ held }}{% endif %})
{%- endmacro %}

{#- The same window for a DATE column holding the first day of a month. -#}
{% macro in_month_date_window(month_date_col) -%}
    {%- set window = run_window() -%}
    {%- set start, end, held = window['start'], window['end'], held_back_months_sql(window['held']) -%}
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
