-- Customers of the clean layer: one row per customer_id (the last line of customers.csv wins).
-- email_is_valid / phone_is_valid are pragmatic well-formedness flags (NULL when there is no
-- value); an invalid one is kept as delivered and listed in quality.issues, never used as a key.

with source as (

    select * from {{ ref('stg_customers') }}
    where quarantine_reason is null

),

ranked as (

    select
        *,
        {{ dedup_rank(['customer_id']) }} as duplicate_rank
    from source

)

select
    customer_id,
    email,
    phone,
    first_name,
    last_name,
    city,
    region,
    country,
    signup_date,
    {{ is_valid_email('email') }} as email_is_valid,
    {{ is_valid_phone('phone') }} as phone_is_valid,
    _month,
    _source_file,
    _source_line
from ranked
where duplicate_rank = 1
