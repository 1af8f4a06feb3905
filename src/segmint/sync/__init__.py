"""Database sync: pull events and traits from the team's own PostgreSQL / MySQL / SQLite."""
