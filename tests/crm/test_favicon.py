"""The site's icon: /favicon.ico answers (browsers ask for it on every page), and the admin's
pages link the same file as a static file, so neither logs a 404."""

import pytest

from crm.favicon import ICON

pytestmark = pytest.mark.django_db


def test_favicon_ico_is_the_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response["Content-Type"] == "image/x-icon"
    assert response.content == ICON.read_bytes() and response.content[:4] == b"\0\0\1\0"
    assert "max-age" in response["Cache-Control"]
    assert client.head("/favicon.ico").status_code == 200
    assert client.post("/favicon.ico").status_code == 405


@pytest.mark.parametrize("page", ["/admin/login/", "/admin/"])
def test_admin_pages_link_the_icon_and_it_is_served(client, admin_user, page):
    if page == "/admin/":
        client.force_login(admin_user)
    answer = client.get(page)
    assert answer.status_code == 200
    html = answer.content.decode()
    assert '<link rel="icon" href="/static/crm/favicon.ico"' in html
    served = client.get("/static/crm/favicon.ico")
    assert served.status_code == 200
    assert b"".join(served.streaming_content) == ICON.read_bytes()
