{{ config(tags=['monthly']) }}

-- Payments, refunds and chargebacks, one row per raw row: trimmed, typed, normalised and checked
-- against the contract.
-- Non-obvious rules:
--   * kind and status must be one of the contract's values (after trim + lower case): a
--     transaction of unknown kind has no direction and one of unknown status cannot be counted
--     as succeeded or failed, so it is quarantined (unknown_value) rather than guessed.
--   * payment_method is free text, normalised to lower snake case ('Credit Card' -> credit_card).
--   * amount >= 0: the kind gives the direction, and 0 is a valid amount (a fully discounted
--     order, a voucher); a negative amount is quarantined (negative_amount), never counted.
--   * *_raw keep the delivered categorical values; is_non_canonical says one needed normalising.
--   * transaction_ts with a UTC offset is converted to store-local time, and its local month must
--     be the month of the file (outside_file_month otherwise).

{%- set checks = [
    ('transaction_id is null', 'missing_required_value', 'transaction_id'),
    ('order_id is null', 'missing_required_value', 'order_id'),
    ('transaction_ts_text is null', 'missing_required_value', 'transaction_ts'),
    ('transaction_ts is null', unparsable_reason('timestamp'), 'transaction_ts'),
    ('amount_text is not null and amount is null', unparsable_reason('decimal'), 'amount'),
    ('amount < 0', 'negative_amount', 'amount'),
    ('kind not in ' ~ sql_list(contract_values('transaction_kind')),
        'unknown_value: expected one of ' ~ contract_values('transaction_kind') | join(', '), 'kind'),
    ('status not in ' ~ sql_list(contract_values('transaction_status')),
        'unknown_value: expected one of ' ~ contract_values('transaction_status') | join(', '), 'status'),
    (month_key('transaction_ts') ~ ' <> _month', 'outside_file_month', 'transaction_ts'),
] %}

with source as (

    select * from {{ source('raw', 'transactions') }}

),

renamed as (

    select
        {{ clean_text('transaction_id') }}      as transaction_id,
        {{ clean_text('order_id') }}            as order_id,
        {{ clean_typed_text('transaction_ts') }} as transaction_ts_text,
        kind                                    as kind_raw,
        {{ normalise_category('kind') }}        as kind,
        payment_method                          as payment_method_raw,
        {{ snake_case('payment_method') }}      as payment_method,
        status                                  as status_raw,
        {{ normalise_category('status') }}      as status,
        {{ clean_typed_text('amount') }}        as amount_text,
        upper({{ clean_text('currency') }})     as currency,
        {{ row_as_json(raw_contract()['transactions']['columns']) }} as raw_record,
        _month,
        _source_file,
        _source_line
    from source

),

typed as (

    select
        *,
        {{ parse_timestamp('transaction_ts_text') }}    as transaction_ts,
        {{ parse_decimal('amount_text') }}              as amount,
        {{ record_key(['transaction_id']) }}            as record_key
    from renamed

),

checked as (

    select
        *,
        {{ quarantine_columns(checks) }}
    from typed

)

select
    transaction_id,
    order_id,
    transaction_ts,
    kind,
    payment_method,
    status,
    amount,
    coalesce(currency, '{{ var("currency") | trim | upper }}') as currency,
    kind_raw,
    payment_method_raw,
    status_raw,
    (   (kind_raw is not null and kind_raw <> coalesce(kind, ''))
     or (payment_method_raw is not null and payment_method_raw <> coalesce(payment_method, ''))
     or (status_raw is not null and status_raw <> coalesce(status, ''))
    )                                                           as is_non_canonical,
    record_key,
    raw_record,
    quarantine_reason,
    quarantine_column,
    _month,
    _source_file,
    _source_line
from checked
