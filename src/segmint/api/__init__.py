"""HTTP API (FastAPI): ingestion endpoints, the admin REST API, and the web UI."""
