{#- One row per warehouse: the reference snapshot, plus warehouse_ids only seen on inventory
    snapshots (attributes NULL). -#}
{{ config(materialized='table') }}

with reference as (
    select * from {{ ref('warehouses') }}
),

ids as (
    select warehouse_id from reference
    union
    select warehouse_id from {{ ref('inventory_snapshots') }}
)

select
    ids.warehouse_id,
    r.warehouse_name,
    r.region,
    r.country,
    r.warehouse_id is not null as is_in_reference
from ids
left join reference r on r.warehouse_id = ids.warehouse_id
where ids.warehouse_id is not null
