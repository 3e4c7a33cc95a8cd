"""The asset graph, one module per layer: raw (ingest), dbt (staging, clean, quality, marts)."""
