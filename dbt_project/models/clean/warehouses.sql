-- Warehouses of the clean layer: one row per warehouse_id (the last line of warehouses.csv wins).

with source as (

    select * from {{ ref('stg_warehouses') }}
    where quarantine_reason is null

),

ranked as (

    select
        *,
        {{ dedup_rank(['warehouse_id']) }} as duplicate_rank
    from source

)

select
    warehouse_id,
    warehouse_name,
    region,
    country,
    _month,
    _source_file,
    _source_line
from ranked
where duplicate_rank = 1
