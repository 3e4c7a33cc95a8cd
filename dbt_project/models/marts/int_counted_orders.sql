{#- Ephemeral: one row per counted order (metrics.md: not cancelled, at least one valid line),
    summed from int_order_lines (flagged_revenue: the revenue of its lines flagged price_outlier,
    NULL when none), with the customer's first counted order month
    (NULL for a guest order). Exact DECIMAL(38,4) amounts; the marts round at the end. -#}
{{ config(materialized='ephemeral') }}

with orders as (
    select
        order_id,
        customer_id,
        channel_id,
        order_ts,
        order_date,
        month,
        country,
        region,
        count(*) as lines,
        sum(quantity) as units,
        {{ money_sum('line_revenue') }} as gross_revenue,
        {{ money_sum('discount_amount') }} as discounts,
        {{ money_sum('line_cogs') }} as cogs,
        {{ money_sum('case when line_cogs is not null then line_revenue end') }} as costed_revenue,
        {{ money_sum('case when is_price_outlier then line_revenue end') }} as flagged_revenue
    from {{ ref('int_order_lines') }}
    where is_counted
    group by order_id, customer_id, channel_id, order_ts, order_date, month, country, region
)

select
    orders.*,
    case when customer_id is not null
         then min(month) over (partition by customer_id) end as first_order_month
from orders
