{{ monthly_table_config('_month') }}

-- Orders of the clean layer: one row per order_id, store-local timestamps, contract defaults
-- applied (see stg_orders). Quarantined rows are left out; duplicates collapse to the row of the
-- latest file, then the last line.
-- Rebuilt per month: the pre-hook deletes the run's month window and only that window is
-- inserted (vars start_month/end_month; none = every month). The duplicate ranking looks at every
-- month of staging, not only the window: a key delivered in two monthly files (a contract breach)
-- then stays in exactly one month whichever months are rebuilt, and quality.issues agrees with it.

with source as (

    select * from {{ ref('stg_orders') }}
    where quarantine_reason is null

),

ranked as (

    select
        *,
        {{ dedup_rank(['order_id']) }} as duplicate_rank
    from source

)

select
    order_id,
    customer_id,
    channel_id,
    order_ts,
    cast(order_ts as date)                                  as order_date,
    cast({{ dbt.date_trunc('month', 'order_ts') }} as date) as order_month,
    status,
    currency,
    ship_city,
    ship_region,
    ship_country,
    shipping_amount,
    _month,
    _source_file,
    _source_line
from ranked
where duplicate_rank = 1
  and {{ in_month_window('_month') }}
