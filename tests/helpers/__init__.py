"""Builders and runners shared by test modules (not collected: no ``test_*`` files here).

Imported as ``tests.helpers.<module>``; ``tests/conftest.py`` puts the repository on
``sys.path`` so that also works under a bare ``pytest`` and in the job processes tests start.
"""
