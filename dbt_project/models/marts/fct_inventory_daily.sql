{#- One row per snapshot day, product and warehouse. Monthly by snapshot_date.
    Empty when the dataset has no inventory snapshots. -#}
{{ monthly_table_config('month', is_date=true) }}

select
    cast(month as date) as month,
    cast(snapshot_date as date) as snapshot_date,
    product_id,
    warehouse_id,
    cast(on_hand_qty as integer) as on_hand_qty,
    cast(reserved_qty as integer) as reserved_qty,
    cast(available_qty as integer) as available_qty,
    cast(reorder_point as integer) as reorder_point,
    is_stockout,
    is_below_reorder_point
from {{ ref('int_inventory_daily') }}
where {{ in_month_date_window('month') }}
