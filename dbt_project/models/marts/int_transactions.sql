{#- Ephemeral: clean transactions as the marts see them: the store-local month of
    transaction_ts, payment_method 'unknown' when missing, the order's customer and whether the
    order is known. Read by fct_transactions, monthly_payment_methods and monthly_revenue (refunds). -#}
{{ config(materialized='ephemeral') }}

select
    {{ month_start('t.transaction_ts') }} as month,
    t.transaction_id,
    t.order_id,
    o.customer_id,
    t.transaction_ts,
    t.transaction_date,
    t.kind,
    coalesce(nullif(t.payment_method, ''), 'unknown') as payment_method,
    t.status,
    t.amount,
    t.currency,
    o.order_id is null as is_orphan
from {{ ref('transactions') }} t
left join {{ ref('orders') }} o on o.order_id = t.order_id
