-- Products (reference snapshot), one row per raw row: trimmed, typed and checked against the
-- contract. unit_cost and list_price may be unknown (NULL): the margin and price-outlier rules
-- skip such products rather than guess.

{%- set checks = [
    ('product_id is null', 'missing_required_value', 'product_id'),
    ('unit_cost_text is not null and unit_cost is null', unparsable_reason('decimal'), 'unit_cost'),
    ('list_price_text is not null and list_price is null', unparsable_reason('decimal'), 'list_price'),
] %}

with source as (

    select * from {{ source('raw', 'products') }}

),

renamed as (

    select
        {{ clean_text('product_id') }}          as product_id,
        {{ clean_text('product_name') }}        as product_name,
        {{ clean_text('category') }}            as category,
        {{ clean_text('brand') }}               as brand,
        {{ clean_typed_text('unit_cost') }}     as unit_cost_text,
        {{ clean_typed_text('list_price') }}    as list_price_text,
        {{ row_as_json(raw_contract()['products']['columns']) }} as raw_record,
        _month,
        _source_file,
        _source_line
    from source

),

typed as (

    select
        *,
        {{ parse_decimal('unit_cost_text') }}   as unit_cost,
        {{ parse_decimal('list_price_text') }}  as list_price,
        {{ record_key(['product_id']) }}        as record_key
    from renamed

),

checked as (

    select
        *,
        {{ quarantine_columns(checks) }}
    from typed

)

select
    product_id,
    product_name,
    category,
    brand,
    unit_cost,
    list_price,
    record_key,
    raw_record,
    quarantine_reason,
    quarantine_column,
    _month,
    _source_file,
    _source_line
from checked
