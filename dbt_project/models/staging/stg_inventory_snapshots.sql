{{ config(tags=['monthly']) }}

-- Daily stock per product and warehouse, one row per raw row: trimmed, typed, defaulted
-- (reserved_qty 0) and checked against the contract. The snapshot's month must be its file's
-- month (outside_file_month otherwise), so that re-delivering a month replaces all of its days.

{%- set checks = [
    ('snapshot_date_text is null', 'missing_required_value', 'snapshot_date'),
    ('product_id is null', 'missing_required_value', 'product_id'),
    ('warehouse_id is null', 'missing_required_value', 'warehouse_id'),
    ('snapshot_date is null', unparsable_reason('date'), 'snapshot_date'),
    ('on_hand_qty_text is not null and on_hand_qty is null', unparsable_reason('integer'), 'on_hand_qty'),
    ('reserved_qty_text is not null and reserved_qty is null', unparsable_reason('integer'), 'reserved_qty'),
    ('reorder_point_text is not null and reorder_point is null', unparsable_reason('integer'), 'reorder_point'),
    (month_key('snapshot_date') ~ ' <> _month', 'outside_file_month', 'snapshot_date'),
] %}

with source as (

    select * from {{ source('raw', 'inventory_snapshots') }}

),

renamed as (

    select
        {{ clean_typed_text('snapshot_date') }} as snapshot_date_text,
        {{ clean_text('product_id') }}          as product_id,
        {{ clean_text('warehouse_id') }}        as warehouse_id,
        {{ clean_typed_text('on_hand_qty') }}   as on_hand_qty_text,
        {{ clean_typed_text('reserved_qty') }}  as reserved_qty_text,
        {{ clean_typed_text('reorder_point') }} as reorder_point_text,
        {{ row_as_json(raw_contract()['inventory_snapshots']['columns']) }} as raw_record,
        _month,
        _source_file,
        _source_line
    from source

),

typed as (

    select
        *,
        {{ parse_date('snapshot_date_text') }}          as snapshot_date,
        {{ parse_integer('on_hand_qty_text') }}         as on_hand_qty,
        {{ parse_integer('reserved_qty_text') }}        as reserved_qty,
        {{ parse_integer('reorder_point_text') }}       as reorder_point
    from renamed

),

checked as (

    select
        *,
        -- an unparsable date still shows in the key as delivered
        {{ record_key(['coalesce(' ~ dbt.cast('snapshot_date', dbt.type_string()) ~ ', snapshot_date_text)', 'product_id', 'warehouse_id']) }}
                                                        as record_key,
        {{ quarantine_columns(checks) }}
    from typed

)

select
    snapshot_date,
    product_id,
    warehouse_id,
    on_hand_qty,
    coalesce(reserved_qty, 0)   as reserved_qty,
    reorder_point,
    record_key,
    raw_record,
    quarantine_reason,
    quarantine_column,
    _month,
    _source_file,
    _source_line
from checked
