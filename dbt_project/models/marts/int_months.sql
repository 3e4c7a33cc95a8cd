{#- Ephemeral: the month spine of the order marts. Every calendar month (DATE, first day) from
    the first to the last month of the clean orders (their _month partition and their store-local
    order_month) and of the months with a delivery (int_month_deliveries: a header-only month at
    the edge of the range), extended to the run's window (macro run_window) when one
    is given, so a month without any counted order, or without any delivery at all, still gets
    its row (zeros). Not filtered to the window:
    the marts filter their output, and compute over the whole history. -#}
{{ config(materialized='ephemeral') }}

{%- set window = run_window() -%}
{%- set start_month, end_month = window['start'], window['end'] -%}

with order_months as (
    select {{ month_key_to_date('_month') }} as month from {{ ref('orders') }} where _month is not null
    union all
    select order_month as month from {{ ref('orders') }}
    union all
    -- months with a delivery but no clean order (a header-only file, every row quarantined)
    select month from {{ ref('int_month_deliveries') }} where data_delivered
    {%- if start_month %}
    union all
    select cast('{{ start_month }}-01' as date) as month
    {%- endif %}
    {%- if end_month %}
    union all
    select cast('{{ end_month }}-01' as date) as month
    {%- endif %}
),

bounds as (
    select min(month) as first_month, max(month) as last_month
    from order_months
)

{{ date_series('first_month', 'last_month', 'month', 'month', 'bounds') }}
