from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_landing_page_renders_from_base_template(client):
    response = client.get("/")
    assert response.status_code == 200
    assert [t.name for t in response.templates][:2] == ["analytics/dashboard.html", "base.html"]
    assert "What is moving on MyAnimeList" in response.content.decode()
