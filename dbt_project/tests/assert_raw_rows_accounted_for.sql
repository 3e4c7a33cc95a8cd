-- Every raw row ends up in exactly one place (the contract): returns one row per (table, month)
-- where raw rows + rejected lines != clean rows + quarantined rows + duplicate issues, or where a
-- line is in no place or in several (see quality.reconciliation, a view over the live tables).
-- Limited to the run's month window (macro run_window) for monthly tables, since a
-- month outside it may not have been built yet; reference tables (month NULL) are always checked.

select *
from {{ ref('reconciliation') }}
where not is_reconciled
  and (month is null or {{ in_month_window('month') }})
