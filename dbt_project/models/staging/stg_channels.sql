-- Sales channels (reference snapshot), one row per raw row: trimmed, normalised and checked
-- against the contract.
-- channel_type is one of the contract's types after trim + lower case; a missing type, or one
-- outside the list, is 'other' (the contract's catch-all) so that every order keeps a channel
-- type; channel_type_raw keeps the delivered value and is_non_canonical flags the change.

{%- set checks = [
    ('channel_id is null', 'missing_required_value', 'channel_id'),
] %}

with source as (

    select * from {{ source('raw', 'channels') }}

),

renamed as (

    select
        {{ clean_text('channel_id') }}          as channel_id,
        {{ clean_text('channel_name') }}        as channel_name,
        channel_type                            as channel_type_raw,
        {{ normalise_category('channel_type') }} as channel_type_normalised,
        {{ row_as_json(raw_contract()['channels']['columns']) }} as raw_record,
        _month,
        _source_file,
        _source_line
    from source

),

typed as (

    select
        *,
        case
            when channel_type_normalised in {{ sql_list(contract_values('channel_type')) }}
                then channel_type_normalised
            else 'other'
        end                                     as channel_type,
        {{ record_key(['channel_id']) }}        as record_key
    from renamed

),

checked as (

    select
        *,
        {{ quarantine_columns(checks) }}
    from typed

)

select
    channel_id,
    channel_name,
    channel_type,
    channel_type_raw,
    (channel_type_raw is not null and channel_type_raw <> channel_type) as is_non_canonical,
    record_key,
    raw_record,
    quarantine_reason,
    quarantine_column,
    _month,
    _source_file,
    _source_line
from checked
