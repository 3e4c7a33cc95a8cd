{#- Ephemeral: clean inventory snapshots with the stock rules of metrics.md, in one place:
    available = on_hand_qty - reserved_qty (reserved NULL = 0); a stockout day is a day with
    available <= 0; below reorder point = available < reorder_point (NULL when no reorder point).
    Read by fct_inventory_daily and monthly_inventory. -#}
{{ config(materialized='ephemeral') }}

select
    {{ month_start('snapshot_date') }} as month,
    snapshot_date,
    product_id,
    warehouse_id,
    on_hand_qty,
    coalesce(reserved_qty, 0) as reserved_qty,
    on_hand_qty - coalesce(reserved_qty, 0) as available_qty,
    reorder_point,
    on_hand_qty - coalesce(reserved_qty, 0) <= 0 as is_stockout,
    on_hand_qty - coalesce(reserved_qty, 0) < reorder_point as is_below_reorder_point
from {{ ref('inventory_snapshots') }}
