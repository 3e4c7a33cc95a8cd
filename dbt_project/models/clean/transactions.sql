{{ monthly_table_config('_month') }}

-- Transactions of the clean layer: one row per transaction_id, store-local timestamps, kind and
-- status among the contract's values, payment_method in lower snake case. A transaction whose
-- order is not in clean.orders is kept (quality.issues flags it orphan_transaction).
-- Month window and duplicates as in clean.orders.

with source as (

    select * from {{ ref('stg_transactions') }}
    where quarantine_reason is null

),

ranked as (

    select
        *,
        {{ dedup_rank(['transaction_id']) }} as duplicate_rank
    from source

)

select
    transaction_id,
    order_id,
    transaction_ts,
    cast(transaction_ts as date)    as transaction_date,
    kind,
    payment_method,
    status,
    amount,
    currency,
    _month,
    _source_file,
    _source_line
from ranked
where duplicate_rank = 1
  and {{ in_month_window('_month') }}
