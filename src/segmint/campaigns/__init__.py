"""Campaigns: message templates and (later) scheduling and sending."""
