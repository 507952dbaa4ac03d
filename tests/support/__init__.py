"""Helpers shared by more than one test suite (unit, integration, e2e):
waiting for a condition, replica catch-up, test organizations and the
analytics data with its independent expected values. Plain functions and
types; fixtures stay in the ``conftest.py`` files (the analytics data's two
module fixtures excepted, imported by the modules that use them).
"""
