{#- One row per customer: every customer of the reference snapshot, plus every customer_id
    that only appears on orders (orphan_customer, attributes NULL). No email, phone or name. -#}
{{ config(materialized='table') }}

with reference as (
    select customer_id, city, region, country, signup_date
    from {{ ref('customers') }}
),

ids as (
    select customer_id from reference
    union
    select customer_id from {{ ref('orders') }} where customer_id is not null
),

first_orders as (
    select customer_id, min(first_order_month) as first_order_month
    from {{ ref('int_counted_orders') }}
    where customer_id is not null
    group by customer_id
)

select
    ids.customer_id,
    r.city,
    r.region,
    r.country,
    cast(r.signup_date as date) as signup_date,
    cast(f.first_order_month as date) as first_order_month,
    r.customer_id is not null as is_in_reference
from ids
left join reference r on r.customer_id = ids.customer_id
left join first_orders f on f.customer_id = ids.customer_id
