{{ config(materialized='view') }}

-- The contract's reconciliation, per table and month (NULL month = a reference snapshot):
--     raw rows + rejected lines = clean rows + quarantined rows + duplicate issues
-- and, line by line, every raw row / rejected line (file + line) is in exactly one of those
-- places: lines_not_placed counts lines found nowhere, lines_placed_twice lines found in more
-- than one place, places_without_line places naming a line the raw layer does not have (the
-- counts alone could miss a loss and a double count that cancel out).
-- A view, not a table: it always describes the warehouse as it is now, so the test on it
-- (tests/assert_raw_rows_accounted_for.sql) catches a row lost by any later change, and in Dagster
-- it is built (and tested) after the clean and quality tables it reads.
-- The generated clean.channels 'unknown' row comes from no raw line and is not counted.

with raw_lines as (

    {% for table in raw_contract() %}
    select '{{ table }}' as table_name, _month as month, _source_file as source_file, _source_line as source_line, 'raw' as kind
    from {{ source('raw', table) }}
    union all
    select '{{ table }}' as table_name, _month as month, source_file, source_line, 'rejected' as kind
    from {{ source('raw', table ~ '_rejected_lines') }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

places as (

    {% for table in raw_contract() %}
    select '{{ table }}' as table_name, _month as month, _source_file as source_file, _source_line as source_line, 'clean' as place
    from {{ ref(table) }}
    where _source_file is not null
    union all
    {% endfor %}

    select table_name, month, source_file, source_line, 'quarantine' as place
    from {{ ref('quarantine') }}

    union all

    select table_name, month, source_file, source_line, 'duplicate' as place
    from {{ ref('issues') }}
    where issue in ('duplicate', 'conflicting_duplicate')

),

raw_counts as (

    select
        table_name,
        month,
        {{ dbt.cast("sum(case when kind = 'raw' then 1 else 0 end)", dbt.type_bigint()) }}       as raw_rows,
        {{ dbt.cast("sum(case when kind = 'rejected' then 1 else 0 end)", dbt.type_bigint()) }}  as rejected_lines
    from raw_lines
    group by table_name, month

),

place_counts as (

    select
        table_name,
        month,
        {{ dbt.cast("sum(case when place = 'clean' then 1 else 0 end)", dbt.type_bigint()) }}      as clean_rows,
        {{ dbt.cast("sum(case when place = 'quarantine' then 1 else 0 end)", dbt.type_bigint()) }} as quarantined_rows,
        {{ dbt.cast("sum(case when place = 'duplicate' then 1 else 0 end)", dbt.type_bigint()) }}  as duplicate_rows
    from places
    group by table_name, month

),

lines as (

    -- one row per (table, file, line) seen on either side, with how often it is on each
    select
        coalesce(r.table_name, p.table_name)    as table_name,
        coalesce(r.month, p.month)              as month,
        coalesce(r.source_file, p.source_file)  as source_file,
        coalesce(r.source_line, p.source_line)  as source_line,
        -- only ever compared with 0: a plain count, since a distinct count cannot spill to disk
        -- (at 1M orders it ran out of DuckDB's memory limit)
        count(r.kind)                           as raw_count,
        count(p.place)                          as place_count
    from raw_lines as r
    full outer join places as p
        on  p.table_name = r.table_name
        and p.source_file = r.source_file
        and p.source_line = r.source_line
    group by 1, 2, 3, 4

),

line_counts as (

    select
        table_name,
        month,
        {{ dbt.cast("sum(case when raw_count > 0 and place_count = 0 then 1 else 0 end)", dbt.type_bigint()) }}  as lines_not_placed,
        {{ dbt.cast("sum(case when raw_count > 0 and place_count > 1 then 1 else 0 end)", dbt.type_bigint()) }}  as lines_placed_twice,
        {{ dbt.cast("sum(case when raw_count = 0 then 1 else 0 end)", dbt.type_bigint()) }}                      as places_without_line
    from lines
    group by table_name, month

),

keys as (

    select table_name, month from raw_counts
    union
    select table_name, month from place_counts

)

select
    keys.table_name,
    keys.month,
    coalesce(raw_counts.raw_rows, 0)                as raw_rows,
    coalesce(raw_counts.rejected_lines, 0)          as rejected_lines,
    coalesce(place_counts.clean_rows, 0)            as clean_rows,
    coalesce(place_counts.quarantined_rows, 0)      as quarantined_rows,
    coalesce(place_counts.duplicate_rows, 0)        as duplicate_rows,
    coalesce(line_counts.lines_not_placed, 0)       as lines_not_placed,
    coalesce(line_counts.lines_placed_twice, 0)     as lines_placed_twice,
    coalesce(line_counts.places_without_line, 0)    as places_without_line,
    (   coalesce(raw_counts.raw_rows, 0) + coalesce(raw_counts.rejected_lines, 0)
          = coalesce(place_counts.clean_rows, 0) + coalesce(place_counts.quarantined_rows, 0)
            + coalesce(place_counts.duplicate_rows, 0)
        and coalesce(line_counts.lines_not_placed, 0) = 0
        and coalesce(line_counts.lines_placed_twice, 0) = 0
        and coalesce(line_counts.places_without_line, 0) = 0
    )                                               as is_reconciled
from keys
left join raw_counts
    on raw_counts.table_name = keys.table_name and raw_counts.month is not distinct from keys.month
left join place_counts
    on place_counts.table_name = keys.table_name and place_counts.month is not distinct from keys.month
left join line_counts
    on line_counts.table_name = keys.table_name and line_counts.month is not distinct from keys.month
