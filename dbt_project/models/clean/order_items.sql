{{ monthly_table_config('_month') }}

-- Valid order lines (quantity > 0, unit_price > 0, 0 <= discount <= quantity * unit_price: the
-- others are quarantined in staging), one row per (order_id, line_number), with line_revenue =
-- quantity * unit_price - discount_amount. A line whose order is not in clean.orders is kept
-- (quality.issues flags it orphan_order_item). Month window and duplicates as in clean.orders.

with source as (

    select * from {{ ref('stg_order_items') }}
    where quarantine_reason is null

),

ranked as (

    select
        *,
        {{ dedup_rank(['order_id', 'line_number']) }} as duplicate_rank
    from source

)

select
    order_id,
    line_number,
    product_id,
    quantity,
    unit_price,
    discount_amount,
    {{ dbt.cast('quantity * unit_price - discount_amount', decimal_type()) }} as line_revenue,
    _month,
    _source_file,
    _source_line
from ranked
where duplicate_rank = 1
  and {{ in_month_window('_month') }}
