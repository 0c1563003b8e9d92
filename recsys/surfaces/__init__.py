"""Recommendation surfaces besides personal top-N: trending and related items.

:mod:`recsys.surfaces.trending` has a pure pandas twin (no Spark import);
:mod:`recsys.surfaces.related` imports Spark. Nothing is imported here, so the pandas twin stays
usable without a JVM.
"""
