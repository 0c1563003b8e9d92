"""Feature engineering on Spark: splits, user and item features, content embeddings, examples.

Every function here is DataFrame -> DataFrame (no writes); ``jobs/features.py`` reads bronze,
calls them and writes the ``features.*`` tables.
"""
