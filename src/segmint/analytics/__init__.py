"""Analytics over the event store: segment growth, overlap and profiles; campaign reports and uplift."""
