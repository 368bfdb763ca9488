"""Content-based video search ("which video is this clip from, and where"): match rows and metrics so far."""
