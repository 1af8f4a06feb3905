"""Ingestion: Segment-spec messages in, validated and normalized, journaled durably, appended in batches."""
