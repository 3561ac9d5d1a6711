"""What the read side tells the apps to its right, which it may not import (tracking remembers searches)."""

from __future__ import annotations

from django.dispatch import Signal

# Sent with `request` and `query` (the search's query string, without the page) when a search is made.
search_made = Signal()
