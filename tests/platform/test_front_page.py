"""The edge's own pages: `/` (the front page) and `/admin/` (the admin index) answer HTML
from the service the edge routes them to, instead of Traefik's bare 404; the API docs
load their scripts from our static files (docs/adr/0020)."""

from __future__ import annotations

import json
import re

import pytest
import requests

from common.frontpage.links import ServiceLinks, all_services
from common.topology import INFRA, SERVICES
from deploy.local import paths, render

EDGE = INFRA.edge_url.rstrip("/")


def test_the_front_page_answers_html_linking_every_admin_and_docs_page() -> None:
    response = requests.get(f"{EDGE}/", timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    for svc in all_services():
        for path in (svc.admin, svc.swagger, svc.redoc, svc.schema, svc.health):
            assert f'href="{path}"' in response.text, path
    dashboard = f"http://127.0.0.1:{INFRA.traefik_dashboard_port}/dashboard/"
    assert f'href="{dashboard}"' in response.text


def test_the_front_page_names_no_other_host_for_its_own_files() -> None:
    html = requests.get(f"{EDGE}/", timeout=10).text

    # Scripts, styles, fonts, images: none; the links are the only addresses it names.
    assert not re.search(r"<(script|link|img)\b", html)
    assert "@import" not in html and "url(" not in html


def test_the_admin_index_lists_every_admin() -> None:
    response = requests.get(f"{EDGE}/admin/", timeout=10)

    assert response.status_code == 200
    listed = re.findall(r'href="(/admin/[^"]+)"', response.text)
    assert listed == [f"/admin/{name}/" for name in SERVICES]


def test_admin_without_its_slash_goes_to_the_admin_index() -> None:
    response = requests.get(f"{EDGE}/admin", timeout=10, allow_redirects=False)

    assert response.status_code in (301, 302)
    assert response.headers["Location"] == "/admin/"


@pytest.mark.parametrize("path", ["/", "/admin/"])
def test_a_write_to_the_edges_pages_is_refused_in_the_json_error_shape(path: str) -> None:
    response = requests.post(f"{EDGE}{path}", data=b"{}", timeout=10)

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}


def test_a_path_below_the_front_page_is_still_an_unknown_route() -> None:
    # The router takes `/` and `/admin/` exactly, nothing under them.
    response = requests.get(f"{EDGE}/no-such-page", timeout=10)

    assert response.status_code == 404


def test_the_readiness_router_still_answers_for_its_own_host() -> None:
    # The edge gate asks `/` with this Host (deploy/local/edge_gate.py): Traefik's ping
    # must win over the front page there.
    response = requests.get(f"{EDGE}/", headers={"Host": render.EDGE_READY_HOST}, timeout=10)

    assert response.status_code == 200
    assert response.text == "OK"


def test_the_rendered_edge_routes_the_pages_to_one_service_below_every_other_router() -> None:
    routers = json.loads((paths.ETC / "traefik" / "dynamic.yml").read_text())["http"]["routers"]
    front = routers["front-page"]

    assert front["service"] == f"{render.FRONT_PAGE_SERVICE}-http"
    assert front["rule"] == "Path(`/`) || Path(`/admin`) || Path(`/admin/`)"
    others = [
        r.get("priority", len(r["rule"])) for name, r in routers.items() if name != "front-page"
    ]
    assert front["priority"] < min(others)


@pytest.mark.parametrize("links", all_services(), ids=lambda links: links.name)
def test_the_docs_pages_load_swagger_ui_and_redoc_from_the_services_static_files(
    links: ServiceLinks,
) -> None:
    static = f"/static/{links.name}/drf_spectacular_sidecar/"
    for page in (links.swagger, links.redoc):
        html = requests.get(f"{EDGE}{page}", timeout=10).text
        assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css|png))"', html)
        assert assets, page
        assert all(a.startswith(static) for a in assets), assets
        assert "fonts.googleapis" not in html
        for asset in assets:
            assert requests.get(f"{EDGE}{asset}", timeout=10).status_code == 200, asset
