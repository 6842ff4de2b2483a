"""The in-memory data model (TimeSeries, Recording), canonical naming, cycles and the Parquet schema."""
