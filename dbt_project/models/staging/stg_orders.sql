{{ config(tags=['monthly']) }}

-- Orders, one row per raw row: trimmed, typed, defaulted, and checked against the contract.
-- A row that breaks the contract keeps its values and gets a quarantine_reason (the first problem
-- found); clean.orders leaves it out and quality.quarantine lists it.
-- Non-obvious rules:
--   * order_ts with a UTC offset is converted to store-local time (var timezone); the store's
--     month of an order is its local month, which is also the month of the file it must be in
--     (outside_file_month otherwise: re-delivering a month would not replace that order).
--   * an unknown or missing status is counted as 'placed' (contract) and flagged with
--     status_is_unknown; status_raw keeps the delivered value for quality.issues.
--   * no dedup here: staging is a view over every month, clean collapses duplicates.

{%- set checks = [
    ('order_id is null', 'missing_required_value', 'order_id'),
    ('order_ts_text is null', 'missing_required_value', 'order_ts'),
    ('order_ts is null', unparsable_reason('timestamp'), 'order_ts'),
    ('shipping_amount_text is not null and shipping_amount is null', unparsable_reason('decimal'), 'shipping_amount'),
    (month_key('order_ts') ~ ' <> _month', 'outside_file_month', 'order_ts'),
] %}

with source as (

    select * from {{ source('raw', 'orders') }}

),

renamed as (

    select
        {{ clean_text('order_id') }}            as order_id,
        {{ clean_text('customer_id') }}         as customer_id,
        {{ clean_text('channel_id') }}          as channel_id,
        {{ clean_typed_text('order_ts') }}      as order_ts_text,
        status                                  as status_raw,
        {{ normalise_category('status') }}      as status_normalised,
        upper({{ clean_text('currency') }})     as currency,
        {{ clean_text('ship_city') }}           as ship_city,
        {{ clean_text('ship_region') }}         as ship_region,
        {{ clean_text('ship_country') }}        as ship_country,
        {{ clean_typed_text('shipping_amount') }} as shipping_amount_text,
        {{ row_as_json(raw_contract()['orders']['columns']) }} as raw_record,
        _month,
        _source_file,
        _source_line
    from source

),

typed as (

    select
        *,
        {{ parse_timestamp('order_ts_text') }}          as order_ts,
        {{ parse_decimal('shipping_amount_text') }}     as shipping_amount,
        coalesce(status_normalised not in {{ sql_list(contract_values('order_status')) }}, true)
                                                        as status_is_unknown,
        {{ record_key(['order_id']) }}                  as record_key
    from renamed

),

checked as (

    select
        *,
        {{ quarantine_columns(checks) }}
    from typed

)

select
    order_id,
    customer_id,
    coalesce(channel_id, 'unknown')                             as channel_id,
    order_ts,
    case when status_is_unknown then 'placed' else status_normalised end as status,
    coalesce(currency, '{{ var("currency") | trim | upper }}')  as currency,
    ship_city,
    ship_region,
    ship_country,
    {{ dbt.cast('coalesce(shipping_amount, 0)', decimal_type()) }} as shipping_amount,
    status_raw,
    status_is_unknown,
    (status_raw is not null and not status_is_unknown and status_raw <> status_normalised)
                                                                as is_non_canonical,
    record_key,
    raw_record,
    quarantine_reason,
    quarantine_column,
    _month,
    _source_file,
    _source_line
from checked
