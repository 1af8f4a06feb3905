"""Analytics over the event store: campaign reports, uplift statistics, segment analyses."""
