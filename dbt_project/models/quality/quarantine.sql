-- Every raw row that did not make it into the clean layer for a reason other than being a
-- duplicate, with its file, line, column and reason:
--   stage 'ingest': lines the CSV reader could not read as a record (raw.<table>_rejected_lines);
--   stage 'clean' : records that break a row-level rule of the contract (stg_<table> rows with a
--                   quarantine_reason: missing/unparsable values, invalid order lines, a record
--                   in another month's file).
-- A full rebuild every run (all months), so it always matches the raw layer.

{% for table in raw_contract() %}
{{ quarantine_rows(table) }}
{% if not loop.last %}
union all
{% endif %}
{%- endfor %}
