{#- One row per month and channel with at least one counted order that month. -#}
{{ monthly_table_config('month', is_date=true) }}

with orders as (
    select * from {{ ref('int_counted_orders') }}
    where {{ in_month_date_window('month') }}
),

by_channel as (
    select
        month,
        channel_id,
        count(*) as orders,
        {{ money_sum('gross_revenue') }} as gross_revenue
    from orders
    group by month, channel_id
),

with_totals as (
    select
        by_channel.*,
        sum(gross_revenue) over (partition by month) as month_gross_revenue
    from by_channel
)

select
    cast(w.month as date) as month,
    w.channel_id,
    coalesce(c.channel_name, w.channel_id) as channel_name,
    cast(w.orders as bigint) as orders,
    {{ money_round('w.gross_revenue') }} as gross_revenue,
    {{ safe_ratio('w.gross_revenue', 'w.month_gross_revenue') }} as revenue_share
from with_totals w
left join {{ ref('channels') }} c on c.channel_id = w.channel_id
