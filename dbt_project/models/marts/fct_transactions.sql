{#- One row per clean transaction. Monthly by the store-local month of transaction_ts.
    Empty when the dataset has no transactions. -#}
{{ monthly_table_config('month', is_date=true) }}

select
    cast(month as date) as month,
    transaction_id,
    order_id,
    customer_id,
    transaction_ts,
    cast(transaction_date as date) as transaction_date,
    kind,
    payment_method,
    status,
    cast(amount as decimal(18,4)) as amount,
    currency,
    is_orphan
from {{ ref('int_transactions') }}
where {{ in_month_date_window('month') }}
