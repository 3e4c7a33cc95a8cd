-- clean.channels always has the 'unknown' channel (orders without a channel point to it), whatever
-- channels.csv holds or whether it was delivered. Returns a row when it is missing.
select 'unknown channel missing from clean.channels' as problem
where not exists (
    select 1 from {{ ref('channels') }} where channel_id = 'unknown'
)
