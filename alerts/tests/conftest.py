# The browser tests here drive the same chromium as the analytics pages' tests.
from analytics.tests.test_browser import browser, watched  # noqa: F401
