{#- Ephemeral: THE definition of an order line as the marts see it (metrics.md), in one place.
    One row per valid clean order line (the clean layer keeps only valid lines), with its order's
    attributes, geography, product category and cost, and whether it belongs to a counted order.
    Every sales mart and fct_order_lines read it; they never re-derive these rules.

    - counted: the order is known and not cancelled (it has a valid line, since this line is
      one). Returned orders are counted. Lines of an unknown order (orphan_order_item) are kept,
      never counted.
    - month: the store-local month of order_ts (clean.orders.order_month); for an orphan line,
      the month of the file it came in.
    - geography: ship_country / ship_region, else the customer's country / region, else 'Unknown'
      (each column on its own).
    - category: the product's category, 'Unknown' when the product or its category is unknown.
    - line_cogs: quantity * unit_cost, NULL when the product has no unit_cost.
    - is_price_outlier: the line is flagged price_outlier in quality.issues (unit_price more than
      10x, or less than 1/10, of the product's list_price; macro is_price_outlier). Still a valid
      line, counted in revenue; monthly_revenue shows its revenue as flagged_revenue. -#}
{{ config(materialized='ephemeral') }}

with items as (
    select * from {{ ref('order_items') }}
),

orders as (
    select * from {{ ref('orders') }}
),

products as (
    select product_id, product_name, category, unit_cost, list_price from {{ ref('products') }}
),

customers as (
    select customer_id, country, region from {{ ref('customers') }}
)

select
    i.order_id,
    i.line_number,
    i.product_id,
    o.customer_id,
    o.channel_id,
    o.order_ts,
    o.order_date,
    coalesce(o.order_month, {{ month_key_to_date('i._month') }}) as month,
    o.status,
    o.order_id is null as is_orphan,
    coalesce(o.order_id is not null and coalesce(o.status, 'placed') <> 'cancelled', false) as is_counted,
    coalesce(nullif(o.ship_country, ''), nullif(c.country, ''), 'Unknown') as country,
    coalesce(nullif(o.ship_region, ''), nullif(c.region, ''), 'Unknown') as region,
    p.product_name,
    coalesce(nullif(p.category, ''), 'Unknown') as category,
    i.quantity,
    i.unit_price,
    i.discount_amount,
    i.line_revenue,
    p.unit_cost,
    case when p.unit_cost is not null
         then cast(i.quantity * p.unit_cost as decimal(18,4)) end as line_cogs,
    {{ is_price_outlier('i.unit_price', 'p.list_price') }} as is_price_outlier
from items i
left join orders o on o.order_id = i.order_id
left join products p on p.product_id = i.product_id
left join customers c on c.customer_id = o.customer_id
