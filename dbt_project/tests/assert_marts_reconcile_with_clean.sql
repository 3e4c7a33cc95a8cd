{#- monthly_revenue reconciles with the clean layer: for every month of the run's window, orders
    and gross_revenue equal a direct recomputation from clean.orders and clean.order_items
    (metrics.md, written out again here on purpose, not through the marts' shared models), and
    the counted lines of fct_order_lines sum to the same gross revenue. One row per mismatch. -#}
{{ config(meta={'dagster': {'ref': {'name': 'monthly_revenue'}}}) }}

with clean_counted_lines as (
    select o.order_month as month, o.order_id, i.line_revenue
    from {{ ref('orders') }} o
    join {{ ref('order_items') }} i on i.order_id = o.order_id
    where o.status <> 'cancelled'
),

recomputed as (
    select
        month,
        count(distinct order_id) as orders,
        round(sum(cast(line_revenue as decimal(38,4))), 2) as gross_revenue
    from clean_counted_lines
    where {{ in_month_date_window('month') }}
    group by month
),

fact as (
    select month, round(sum(cast(line_revenue as decimal(38,4))), 2) as gross_revenue
    from {{ ref('fct_order_lines') }}
    where is_counted and {{ in_month_date_window('month') }}
    group by month
),

mart as (
    select month, orders, gross_revenue
    from {{ ref('monthly_revenue') }}
    where {{ in_month_date_window('month') }}
)

select
    'clean' as compared_with,
    coalesce(m.month, r.month) as month,
    m.orders as mart_orders,
    r.orders as expected_orders,
    m.gross_revenue as mart_gross_revenue,
    r.gross_revenue as expected_gross_revenue
from mart m
full outer join recomputed r on r.month = m.month
where m.month is null
   or coalesce(r.orders, 0) <> m.orders
   or coalesce(r.gross_revenue, 0) <> m.gross_revenue

union all

select
    'fct_order_lines' as compared_with,
    coalesce(m.month, f.month) as month,
    m.orders as mart_orders,
    null as expected_orders,
    m.gross_revenue as mart_gross_revenue,
    f.gross_revenue as expected_gross_revenue
from mart m
full outer join fact f on f.month = m.month
where m.month is null
   or coalesce(f.gross_revenue, 0) <> m.gross_revenue
