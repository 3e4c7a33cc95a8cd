{{ monthly_table_config('_month') }}

-- Daily stock of the clean layer: one row per (snapshot_date, product_id, warehouse_id),
-- reserved_qty defaulted to 0. Month window and duplicates as in clean.orders.

with source as (

    select * from {{ ref('stg_inventory_snapshots') }}
    where quarantine_reason is null

),

ranked as (

    select
        *,
        {{ dedup_rank(['snapshot_date', 'product_id', 'warehouse_id']) }} as duplicate_rank
    from source

)

select
    snapshot_date,
    product_id,
    warehouse_id,
    on_hand_qty,
    reserved_qty,
    reorder_point,
    _month,
    _source_file,
    _source_line
from ranked
where duplicate_rank = 1
  and {{ in_month_window('_month') }}
