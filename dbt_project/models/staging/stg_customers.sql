-- Customers (reference snapshot), one row per raw row: trimmed, typed and checked against the
-- contract. Emails and phones are kept as delivered (trimmed): their well-formedness is a flag
-- in clean.customers, not a reason to drop the customer.

{%- set checks = [
    ('customer_id is null', 'missing_required_value', 'customer_id'),
    ('signup_date_text is not null and signup_date is null', unparsable_reason('date'), 'signup_date'),
] %}

with source as (

    select * from {{ source('raw', 'customers') }}

),

renamed as (

    select
        {{ clean_text('customer_id') }}         as customer_id,
        {{ clean_text('email') }}               as email,
        {{ clean_text('phone') }}               as phone,
        {{ clean_text('first_name') }}          as first_name,
        {{ clean_text('last_name') }}           as last_name,
        {{ clean_text('city') }}                as city,
        {{ clean_text('region') }}              as region,
        {{ clean_text('country') }}             as country,
        {{ clean_typed_text('signup_date') }}   as signup_date_text,
        {{ row_as_json(raw_contract()['customers']['columns']) }} as raw_record,
        _month,
        _source_file,
        _source_line
    from source

),

typed as (

    select
        *,
        {{ parse_date('signup_date_text') }}    as signup_date,
        {{ record_key(['customer_id']) }}       as record_key
    from renamed

),

checked as (

    select
        *,
        {{ quarantine_columns(checks) }}
    from typed

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
    record_key,
    raw_record,
    quarantine_reason,
    quarantine_column,
    _month,
    _source_file,
    _source_line
from checked
