{#- One row per valid clean order line (cancelled and orphan lines included, see is_counted),
    with its order's attributes. Amounts at the clean precision DECIMAL(18,4), so sums over this
    fact are exact. Monthly by the store-local order month. -#}
{{ monthly_table_config('month', is_date=true) }}

select
    cast(month as date) as month,
    order_id,
    cast(line_number as integer) as line_number,
    product_id,
    customer_id,
    channel_id,
    order_ts,
    order_date,
    status,
    country,
    region,
    category,
    cast(quantity as integer) as quantity,
    cast(unit_price as decimal(18,4)) as unit_price,
    cast(discount_amount as decimal(18,4)) as discount_amount,
    cast(line_revenue as decimal(18,4)) as line_revenue,
    cast(unit_cost as decimal(18,4)) as unit_cost,
    cast(line_cogs as decimal(18,4)) as cogs,
    is_counted,
    is_orphan
from {{ ref('int_order_lines') }}
where {{ in_month_date_window('month') }}
