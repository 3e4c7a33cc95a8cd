{#- One row per month, product and warehouse with at least one snapshot in the month.
    Empty when the dataset has no inventory snapshots. -#}
{{ monthly_table_config('month', is_date=true) }}

with snapshots as (
    select
        s.*,
        row_number() over (
            partition by month, product_id, warehouse_id order by snapshot_date desc
        ) as nth_from_month_end
    from {{ ref('int_inventory_daily') }} s
    where {{ in_month_date_window('month') }}
),

stock as (
    select
        month,
        product_id,
        warehouse_id,
        avg(cast(on_hand_qty as double)) as avg_on_hand,
        sum(case when is_stockout then 1 else 0 end) as stockout_days,
        max(case when nth_from_month_end = 1 then on_hand_qty end) as month_end_on_hand,
        max(case when nth_from_month_end = 1 then available_qty end) as month_end_available,
        max(case when nth_from_month_end = 1 then reorder_point end) as month_end_reorder_point
    from snapshots
    group by month, product_id, warehouse_id
),

sold as (
    select month, product_id, sum(quantity) as units_sold
    from {{ ref('int_order_lines') }}
    where is_counted and {{ in_month_date_window('month') }}
    group by month, product_id
)

select
    cast(stock.month as date) as month,
    stock.product_id,
    stock.warehouse_id,
    cast(stock.month_end_on_hand as integer) as month_end_on_hand,
    cast(stock.avg_on_hand as double) as avg_on_hand,
    cast(stock.stockout_days as integer) as stockout_days,
    cast(coalesce(sold.units_sold, 0) as bigint) as units_sold,
    {{ safe_ratio(
        'stock.month_end_available * ' ~ dbt.datediff('stock.month', dbt.dateadd('month', 1, 'stock.month'), 'day'),
        'sold.units_sold'
    ) }} as days_of_supply,
    stock.month_end_available < stock.month_end_reorder_point as below_reorder_point
from stock
left join sold
    on sold.month = stock.month
   and sold.product_id = stock.product_id
