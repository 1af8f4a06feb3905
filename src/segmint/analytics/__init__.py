"""Looking at segments: growth over time, overlap between segments, and member profiles against everyone."""
