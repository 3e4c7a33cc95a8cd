{#- One row per month (of transaction_ts) and payment method with at least one transaction.
    Empty when the dataset has no transactions. -#}
{{ monthly_table_config('month', is_date=true) }}

with txn as (
    select * from {{ ref('int_transactions') }}
    where {{ in_month_date_window('month') }}
),

by_method as (
    select
        month,
        payment_method,
        sum(case when kind = 'payment' then 1 else 0 end) as payments,
        coalesce({{ money_sum("case when kind = 'payment' and status = 'succeeded' then amount end") }}, 0) as succeeded_amount,
        sum(case when kind = 'payment' and status = 'failed' then 1 else 0 end) as failed,
        coalesce({{ money_sum("case when kind = 'refund' and status = 'succeeded' then amount end") }}, 0) as refunds,
        coalesce({{ money_sum("case when kind = 'chargeback' and status = 'succeeded' then amount end") }}, 0) as chargebacks
    from txn
    group by month, payment_method
),

with_totals as (
    select
        by_method.*,
        sum(succeeded_amount) over (partition by month) as month_succeeded_amount
    from by_method
)

select
    cast(month as date) as month,
    payment_method,
    cast(payments as bigint) as payments,
    {{ money_round('succeeded_amount') }} as succeeded_amount,
    {{ safe_ratio('succeeded_amount', 'month_succeeded_amount') }} as amount_share,
    cast(failed as bigint) as failed,
    {{ safe_ratio('failed', 'payments') }} as failure_rate,
    {{ money_round('refunds') }} as refunds,
    {{ money_round('chargebacks') }} as chargebacks
from with_totals
