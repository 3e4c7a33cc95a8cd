{#- One row per calendar day of the months of the data range (int_months), zeros on a day without
    counted orders. The 7-day average is computed over the whole history, so the first days of a
    month see the end of the previous one. Monthly by the month of `date`. -#}
{{ monthly_table_config('date', by_month_of_day=true) }}

with bounds as (
    select min(month) as first_day, {{ month_last_day('max(month)') }} as last_day
    from {{ ref('int_months') }}
),

days as (
    {{ date_series('first_day', 'last_day', 'day', 'date_day', 'bounds') }}
),

sales as (
    select order_date, count(*) as orders, {{ money_sum('gross_revenue') }} as gross_revenue
    from {{ ref('int_counted_orders') }}
    group by order_date
),

daily as (
    select
        d.date_day,
        coalesce(s.orders, 0) as orders,
        coalesce(s.gross_revenue, 0) as gross_revenue
    from days d
    left join sales s on s.order_date = d.date_day
),

rolling as (
    select
        daily.*,
        sum(gross_revenue) over (
            order by date_day rows between 6 preceding and current row
        ) as gross_revenue_7d
    from daily
)

select
    cast(date_day as date) as date,
    cast(orders as bigint) as orders,
    {{ money_round('gross_revenue') }} as gross_revenue,
    {{ money_div('gross_revenue_7d', 7) }} as revenue_7d_avg
from rolling
where {{ in_month_date_window(month_start('date_day')) }}
