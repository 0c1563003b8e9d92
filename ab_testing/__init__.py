"""A/B-testing platform: statistics engine and analysis settings."""
