{#- What the pipeline did not take as delivered, summarised: quality.quarantine (rows kept out of
    the clean layer) and quality.issues (rows kept, but flagged) counted by month, table and
    reason, each reason in one of the five data-quality dimensions of the scorecard.
    The reason is the code before the first ':' (quarantine reasons carry a detail after it,
    e.g. "unparsable_timestamp: expected YYYY-MM-DD HH:MM[:SS][+HH:MM]").
    The mapping reason -> dimension lives here only; data_quality_scorecard reads it. -#}

with quarantined as (
    select
        month,
        table_name,
        'quarantine' as source,
        stage,
        trim(split_part(reason, ':', 1)) as reason,
        record_key,
        source_file,
        source_line
    from {{ ref('quarantine') }}
),

flagged as (
    select
        month,
        table_name,
        'issue' as source,
        {{ dbt.cast('null', dbt.type_string()) }} as stage,
        issue as reason,
        record_key,
        source_file,
        source_line
    from {{ ref('issues') }}
),

both_sources as (
    select * from quarantined
    union all
    select * from flagged
),

classified as (
    select
        *,
        case
            -- a required value is missing
            when reason like 'missing%' then 'completeness'
            -- values present and well formed, but impossible for the business
            when reason in ('non_positive_quantity', 'non_positive_price', 'bad_discount', 'negative_amount') then 'accuracy'
            -- values far from the norm (kept, flagged)
            when reason in ('price_outlier') then 'anomaly'
            -- records that disagree with other records or with their partition
            when reason in ('duplicate', 'conflicting_duplicate', 'orphan_order_item', 'orphan_customer', 'orphan_product',
                            'orphan_transaction', 'non_canonical_value', 'outside_file_month') then 'consistency'
            -- not in the contract's format or set: unreadable lines, unparsable values,
            -- malformed emails / phones, unknown statuses, and any other quarantine reason
            when source = 'quarantine' or reason like 'unparsable%' or reason like 'invalid%'
                 or reason like 'unknown%' then 'validity'
            else 'consistency'
        end as dimension
    from both_sources
)

select
    {{ month_key_to_date('month') }} as month,
    cast(table_name as varchar) as table_name,
    cast(source as varchar) as source,
    cast(reason as varchar) as reason,
    cast(dimension as varchar) as dimension,
    cast(count(*) as bigint) as records,
    cast(min(record_key) as varchar) as example_record_key,
    cast(min(source_file || ' line ' || cast(source_line as varchar)) as varchar) as example_location
from classified
group by month, table_name, source, reason, dimension
