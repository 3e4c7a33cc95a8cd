{#- One row per channel: the reference snapshot (always with 'unknown'), plus channel_ids only
    seen on orders (attributes NULL). -#}
{{ config(materialized='table') }}

with reference as (
    select * from {{ ref('channels') }}
),

ids as (
    select channel_id from reference
    union
    select channel_id from {{ ref('orders') }}
)

select
    ids.channel_id,
    r.channel_name,
    r.channel_type,
    r.channel_id is not null as is_in_reference
from ids
left join reference r on r.channel_id = ids.channel_id
where ids.channel_id is not null
