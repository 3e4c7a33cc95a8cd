{{ config(tags=['monthly']) }}

-- Order lines, one row per raw row: trimmed, typed, defaulted, and checked against the contract.
-- A line is valid when quantity > 0, unit_price > 0 and 0 <= discount_amount <= quantity *
-- unit_price (contract); any other line gets a quarantine_reason and stays out of clean.
-- Lines are not checked against their file's month: they travel in the file of their order,
-- whose month is the order's, not something the line carries.

{%- set checks = [
    ('order_id is null', 'missing_required_value', 'order_id'),
    ('line_number_text is null', 'missing_required_value', 'line_number'),
    ('product_id is null', 'missing_required_value', 'product_id'),
    ('quantity_text is null', 'missing_required_value', 'quantity'),
    ('unit_price_text is null', 'missing_required_value', 'unit_price'),
    ('line_number is null', unparsable_reason('integer'), 'line_number'),
    ('quantity is null', unparsable_reason('integer'), 'quantity'),
    ('unit_price is null', unparsable_reason('decimal'), 'unit_price'),
    ('discount_amount_text is not null and discount_amount is null', unparsable_reason('decimal'), 'discount_amount'),
    ('quantity <= 0', 'non_positive_quantity', 'quantity'),
    ('unit_price <= 0', 'non_positive_price', 'unit_price'),
    ('coalesce(discount_amount, 0) < 0 or coalesce(discount_amount, 0) > quantity * unit_price', 'bad_discount', 'discount_amount'),
] %}

with source as (

    select * from {{ source('raw', 'order_items') }}

),

renamed as (

    select
        {{ clean_text('order_id') }}            as order_id,
        {{ clean_typed_text('line_number') }}   as line_number_text,
        {{ clean_text('product_id') }}          as product_id,
        {{ clean_typed_text('quantity') }}      as quantity_text,
        {{ clean_typed_text('unit_price') }}    as unit_price_text,
        {{ clean_typed_text('discount_amount') }} as discount_amount_text,
        {{ row_as_json(raw_contract()['order_items']['columns']) }} as raw_record,
        _month,
        _source_file,
        _source_line
    from source

),

typed as (

    select
        *,
        {{ parse_integer('line_number_text') }}         as line_number,
        {{ parse_integer('quantity_text') }}            as quantity,
        {{ parse_decimal('unit_price_text') }}          as unit_price,
        {{ parse_decimal('discount_amount_text') }}     as discount_amount
    from renamed

),

checked as (

    select
        *,
        -- an unparsable line number still shows in the key as delivered
        {{ record_key(['order_id', 'coalesce(' ~ dbt.cast('line_number', dbt.type_string()) ~ ', line_number_text)']) }}
                                                        as record_key,
        {{ quarantine_columns(checks) }}
    from typed

)

select
    order_id,
    line_number,
    product_id,
    quantity,
    unit_price,
    {{ dbt.cast('coalesce(discount_amount, 0)', decimal_type()) }} as discount_amount,
    record_key,
    raw_record,
    quarantine_reason,
    quarantine_column,
    _month,
    _source_file,
    _source_line
from checked
