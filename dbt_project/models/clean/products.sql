-- Products of the clean layer: one row per product_id (the last line of products.csv wins).
-- unit_cost / list_price are NULL when unknown.

with source as (

    select * from {{ ref('stg_products') }}
    where quarantine_reason is null

),

ranked as (

    select
        *,
        {{ dedup_rank(['product_id']) }} as duplicate_rank
    from source

)

select
    product_id,
    product_name,
    category,
    brand,
    unit_cost,
    list_price,
    _month,
    _source_file,
    _source_line
from ranked
where duplicate_rank = 1
