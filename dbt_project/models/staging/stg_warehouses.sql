-- Warehouses (reference snapshot), one row per raw row: trimmed and checked against the
-- contract (warehouse_id is the only required value).

{%- set checks = [
    ('warehouse_id is null', 'missing_required_value', 'warehouse_id'),
] %}

with source as (

    select * from {{ source('raw', 'warehouses') }}

),

renamed as (

    select
        {{ clean_text('warehouse_id') }}        as warehouse_id,
        {{ clean_text('warehouse_name') }}      as warehouse_name,
        {{ clean_text('region') }}              as region,
        {{ clean_text('country') }}             as country,
        {{ row_as_json(raw_contract()['warehouses']['columns']) }} as raw_record,
        _month,
        _source_file,
        _source_line
    from source

),

typed as (

    select
        *,
        {{ record_key(['warehouse_id']) }}      as record_key
    from renamed

),

checked as (

    select
        *,
        {{ quarantine_columns(checks) }}
    from typed

)

select
    warehouse_id,
    warehouse_name,
    region,
    country,
    record_key,
    raw_record,
    quarantine_reason,
    quarantine_column,
    _month,
    _source_file,
    _source_line
from checked
