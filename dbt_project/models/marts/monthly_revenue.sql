{#- One row per month of the data range (int_months), zeros for a month without counted orders.
    Computed over the whole clean history (growth, new vs returning), output for the run's window.
    data_delivered (int_month_deliveries) is false for an empty month: nothing was delivered.
    flagged_revenue: revenue of the counted lines flagged price_outlier (int_counted_orders). -#}
{{ monthly_table_config('month', is_date=true) }}

with months as (
    select month from {{ ref('int_months') }}
),

orders as (
    select * from {{ ref('int_counted_orders') }}
),

sales as (
    select
        month,
        count(*) as orders,
        sum(units) as units,
        {{ money_sum('gross_revenue') }} as gross_revenue,
        {{ money_sum('discounts') }} as discounts,
        {{ money_sum('cogs') }} as cogs,
        {{ money_sum('costed_revenue') }} as costed_revenue,
        {{ money_sum('flagged_revenue') }} as flagged_revenue,
        count(distinct case when first_order_month = month then customer_id end) as new_customers,
        count(distinct case when first_order_month < month then customer_id end) as returning_customers
    from orders
    group by month
),

refunds as (
    select month, {{ money_sum('amount') }} as refunds
    from {{ ref('int_transactions') }}
    where status = 'succeeded' and kind in ('refund', 'chargeback')
    group by month
),

monthly as (
    select
        m.month,
        coalesce(s.orders, 0) as orders,
        coalesce(s.units, 0) as units,
        coalesce(s.gross_revenue, 0) as gross_revenue,
        coalesce(s.discounts, 0) as discounts,
        coalesce(r.refunds, 0) as refunds,
        s.cogs,
        s.costed_revenue,
        coalesce(s.flagged_revenue, 0) as flagged_revenue,
        coalesce(d.data_delivered, false) as data_delivered,
        coalesce(s.new_customers, 0) as new_customers,
        coalesce(s.returning_customers, 0) as returning_customers
    from months m
    left join sales s on s.month = m.month
    left join refunds r on r.month = m.month
    left join {{ ref('int_month_deliveries') }} d on d.month = m.month
),

with_growth as (
    select
        cur.*,
        prev_month.gross_revenue as previous_month_gross,
        prev_year.gross_revenue as previous_year_gross
    from monthly cur
    left join monthly prev_month
        on prev_month.month = cast({{ dbt.dateadd('month', -1, 'cur.month') }} as date)
    left join monthly prev_year
        on prev_year.month = cast({{ dbt.dateadd('month', -12, 'cur.month') }} as date)
)

select
    cast(month as date) as month,
    cast(orders as bigint) as orders,
    cast(units as bigint) as units,
    {{ money_round('gross_revenue') }} as gross_revenue,
    {{ money_round('discounts') }} as discounts,
    {{ money_round('refunds') }} as refunds,
    {{ money_round('gross_revenue - refunds') }} as net_revenue,
    {{ money_div('gross_revenue', 'orders') }} as aov,
    {{ money_round('cogs') }} as cogs,
    {{ money_round('costed_revenue - cogs') }} as gross_margin,
    cast(new_customers as bigint) as new_customers,
    cast(returning_customers as bigint) as returning_customers,
    {{ safe_ratio('gross_revenue - previous_month_gross', 'previous_month_gross') }} as mom_growth,
    {{ safe_ratio('gross_revenue - previous_year_gross', 'previous_year_gross') }} as yoy_growth,
    {{ money_round('flagged_revenue') }} as flagged_revenue,
    {{ safe_ratio('flagged_revenue', 'gross_revenue') }} as flagged_revenue_share,
    data_delivered
from with_growth
where {{ in_month_date_window('month') }}
