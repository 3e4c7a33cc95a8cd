{#- One row per product: the reference snapshot, plus product_ids only seen on order lines or
    inventory snapshots (attributes NULL). -#}
{{ config(materialized='table') }}

with reference as (
    select * from {{ ref('products') }}
),

ids as (
    select product_id from reference
    union
    select product_id from {{ ref('order_items') }}
    union
    select product_id from {{ ref('inventory_snapshots') }}
)

select
    ids.product_id,
    r.product_name,
    r.category,
    r.brand,
    cast(r.unit_cost as decimal(18,4)) as unit_cost,
    cast(r.list_price as decimal(18,4)) as list_price,
    r.product_id is not null as is_in_reference
from ids
left join reference r on r.product_id = ids.product_id
where ids.product_id is not null
