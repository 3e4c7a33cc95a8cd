-- Sales channels of the clean layer: one row per channel_id (the last line of channels.csv wins).
-- An order without a channel has channel_id 'unknown' (stg_orders), so this table always has an
-- 'unknown' row: the delivered one if channels.csv has it, else a generated one (channel_type
-- 'other', no lineage: it comes from no raw row and is not counted in the reconciliation).

with source as (

    select * from {{ ref('stg_channels') }}
    where quarantine_reason is null

),

ranked as (

    select
        *,
        {{ dedup_rank(['channel_id']) }} as duplicate_rank
    from source

),

delivered as (

    select
        channel_id,
        channel_name,
        channel_type,
        _month,
        _source_file,
        _source_line
    from ranked
    where duplicate_rank = 1

),

unknown_channel as (

    select
        'unknown'                                           as channel_id,
        'Unknown'                                           as channel_name,
        'other'                                             as channel_type,
        {{ dbt.cast('null', dbt.type_string()) }}           as _month,
        {{ dbt.cast('null', dbt.type_string()) }}           as _source_file,
        {{ dbt.cast('null', dbt.type_bigint()) }}           as _source_line
    where not exists (select 1 from delivered where channel_id = 'unknown')

)

select * from delivered
union all
select * from unknown_channel
