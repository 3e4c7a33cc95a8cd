"""NexCart Analytics: the Dagster code location (raw ingest, dbt layers, quality gates)."""
