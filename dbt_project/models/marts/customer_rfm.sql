{#- One row per month (as of its last day) and customer with at least one counted order up to
    then. Scores are quintiles (ntile(5)) over the customers of that month, 5 = best, ties broken
    by customer_id; the segment maps (r_score, f_score) as documented in _marts.yml. -#}
{{ monthly_table_config('month', is_date=true) }}

with months as (
    select month, {{ month_last_day('month') }} as month_end
    from {{ ref('int_months') }}
    where {{ in_month_date_window('month') }}
),

customer_months as (
    select
        customer_id,
        month,
        count(*) as orders,
        max(order_date) as last_order_date,
        {{ money_sum('gross_revenue') }} as gross_revenue
    from {{ ref('int_counted_orders') }}
    where customer_id is not null
    group by customer_id, month
),

as_of_month as (
    select
        m.month,
        cm.customer_id,
        {{ dbt.datediff('max(cm.last_order_date)', 'max(m.month_end)', 'day') }} as recency_days,
        sum(cm.orders) as frequency,
        {{ money_round(money_sum('cm.gross_revenue')) }} as monetary
    from months m
    join customer_months cm on cm.month <= m.month
    group by m.month, cm.customer_id
),

scored as (
    select
        as_of_month.*,
        ntile(5) over (partition by month order by recency_days desc, customer_id) as r_score,
        ntile(5) over (partition by month order by frequency, customer_id) as f_score,
        ntile(5) over (partition by month order by monetary, customer_id) as m_score
    from as_of_month
)

select
    cast(month as date) as month,
    customer_id,
    cast(recency_days as integer) as recency_days,
    cast(frequency as bigint) as frequency,
    monetary,
    cast(r_score as integer) as r_score,
    cast(f_score as integer) as f_score,
    cast(m_score as integer) as m_score,
    case
        when r_score = 5 and f_score >= 4 then 'Champions'
        when r_score >= 3 and f_score >= 4 then 'Loyal'
        when r_score >= 4 and f_score = 1 then 'New Customers'
        when r_score >= 4 then 'Potential Loyalists'
        when r_score = 3 and f_score = 3 then 'Potential Loyalists'
        when r_score = 3 then 'Hibernating'
        when f_score = 5 then 'Cannot Lose Them'
        when f_score >= 3 then 'At Risk'
        when r_score = 2 then 'Hibernating'
        else 'Lost'
    end as segment
from scored
