"""The analytics JSON API (/api/v1/), one module per sub-domain as in `analytics.selectors`.

Every per-feed list answers in the shared envelope (feed, as_of, date, baseline_date,
insufficient_history, results); every list can be downloaded as CSV with `?format=csv`.
"""
