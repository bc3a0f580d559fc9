"""The DuckDB run registry."""
