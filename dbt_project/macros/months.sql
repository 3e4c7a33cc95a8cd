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
    rather than being silently ignored: run `dbt build --full-refresh` after such a change; so do
    constraints of the model's contract that the existing table lacks. -#}
{% macro monthly_table_config(month_column, is_date=false, by_month_of_day=false) -%}
    {%- set month_sql = "month_start('" ~ month_column ~ "')" if by_month_of_day else "'" ~ month_column ~ "'" -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=["{{ assert_table_enforces_its_contract() }}",
                  "{{ delete_month_window(" ~ month_sql ~ ", is_date=" ~ (is_date or by_month_of_day) ~ ") }}"],
        tags=['monthly'],
    ) }}
{%- endmacro %}

{#- An incremental table keeps the constraints it was created with, and a model's contract states
    its NOT NULL and CHECK rules as constraints (the database enforces them on every insert, with
    no test query): a table created by a version whose contract declared fewer would take rows that
    break the new ones without a word. So an existing table that lacks a declared constraint stops
    the build, as a changed column list does (on_schema_change 'fail'), until it is rebuilt once
    with --full-refresh. Renders no SQL. -#}
{% macro assert_table_enforces_its_contract() -%}
    {{ return(adapter.dispatch('assert_table_enforces_its_contract', 'nexcart')()) }}
{%- endmacro %}
{% macro default__assert_table_enforces_its_contract() -%}
    {#- other engines do not enforce these constraints; the data tests and gates still apply -#}
{%- endmacro %}
{% macro duckdb__assert_table_enforces_its_contract() -%}
    {%- if execute and is_incremental() and config.get('contract').enforced -%}
        {%- set declared = [] -%}
        {%- for column in model.columns.values() -%}
            {%- for constraint in column.constraints if constraint.type in ('not_null', 'check') -%}
                {%- do declared.append(column.name ~ ' ' ~ constraint.type) -%}
            {%- endfor -%}
        {%- endfor -%}
        {%- set of_this = "database_name = '" ~ this.database ~ "' and schema_name = '" ~ this.schema
                          ~ "' and table_name = '" ~ this.identifier ~ "'" -%}
        {%- set in_place = run_query(
            "select column_name || ' not_null' from duckdb_columns() where " ~ of_this ~ " and not is_nullable"
            ~ " union all select unnest(constraint_column_names) || ' check' from duckdb_constraints()"
            ~ " where " ~ of_this ~ " and constraint_type = 'CHECK'"
        ).columns[0].values() -%}
        {%- set missing = declared | reject('in', in_place) | list -%}
        {%- if missing -%}
            {{ exceptions.raise_compiler_error(
                "The table " ~ this ~ " is out of sync with its model's contract: it was built without the "
                ~ "constraints " ~ missing | join(', ') ~ " (by an older version of the project?). Rebuild it "
                ~ "once with --full-refresh.") }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
