"""The fake Jikan v4 (a loopback HTTP server) and the real recorded payloads it serves."""

from devtools.fakejikan.server import DATA_DIR, FakeJikan, catalogue, iter_catalogue, real_items

__all__ = ["DATA_DIR", "FakeJikan", "catalogue", "iter_catalogue", "real_items"]
