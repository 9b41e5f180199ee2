"""The API reference page as a person uses it, in headless Chromium (Debian's, which `make test` installs):
pick a version, log in with the access key and secret key, try tasks.get_all and see the task it lists.
A screenshot of the result is kept in the test's temp directory.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from specgate.runtime import app as app_module
from specgate.runtime import docs
from specgate.runtime.app import create_app
from specgate.runtime.settings import Settings

from .conftest import ACCESS_KEY, SECRET_KEY, Api, Server, free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PICKED = "2.20"  # an older pin than the default one, so picking it is observable


def with_docs(app):
    """create_app's application with the reference routes in front, as long as app.py does not mount them."""
    if hasattr(app_module, "docs"):  # app.py wires them itself (`from . import docs`)
        return app
    reference = Starlette(routes=docs.routes(app.rpc.tables))

    async def combined(scope, receive, send):
        if scope["type"] == "http" and docs.claims(scope["path"]):
            await reference(scope, receive, send)
        else:
            await app(scope, receive, send)

    return combined


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    port = free_port()
    settings = Settings(env="test", host="127.0.0.1", port=port, data_dir=tmp_path_factory.mktemp("specgate-data"),
                        access_key=ACCESS_KEY, secret_key=SECRET_KEY, validate_responses=True, enable_drafts=False)  # fmt: skip
    app = create_app(settings)
    uv = uvicorn.Server(uvicorn.Config(with_docs(app), host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.02)
    yield Server(f"http://127.0.0.1:{port}", ACCESS_KEY, SECRET_KEY, settings.data_dir, app)
    uv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed: run `make test`, or apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield instance
        instance.close()


def test_openapi_documents_are_served(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        latest = http.get("/openapi.json").json()
        assert latest["openapi"] == "3.1.0" and "/v2.26/tasks.get_all" in latest["paths"]
        picked = http.get(f"/openapi/{PICKED}.json", params={"oas": "3.0"}).json()
        assert picked["openapi"] == "3.0.3" and f"/v{PICKED}/tasks.get_all" in picked["paths"]
        assert http.get("/openapi/cvat.json").json()["paths"]["/api/tasks"]["get"]["operationId"] == "cvat_tasks.list"
        assert http.get("/openapi/nope.json").status_code == 404
        assert http.get("/docs/assets/swagger-ui-bundle.js").status_code == 200  # from the installed package
        assert http.post("/v2.26/server.info").status_code == 401  # RPC paths are still RPC's


@pytest.fixture
def page(browser, server: Server):
    """The reference page, freshly loaded in a context of its own (no cookies, no stored token)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(30_000)
    page.goto(f"{server.url}/docs")
    page.wait_for_selector(".swagger-ui .info .title")
    yield page
    page.context.close()


def try_it(page, tag: str, method: str, path: str, body: str | None = None):
    """Expand an operation, execute it (with ``body`` as its JSON body) and return its answer's locator."""
    page.click(f".opblock-tag[data-tag='{tag}']")
    operation = page.locator(f".opblock-{method}:has(.opblock-summary-path[data-path='{path}'])")
    operation.locator(".opblock-summary").click()
    if body is not None:
        operation.locator("textarea.body-param__text").fill(body)
    with page.expect_request(lambda r: r.url.split("?")[0].endswith(path)) as sent:
        operation.locator(".btn.execute").click()
    assert sent.value.headers.get("authorization", "").startswith("Bearer ")  # what the page authorized
    answer = operation.locator(".live-responses-table .response")
    answer.locator(".response-col_status").wait_for()
    return answer


def test_pick_a_version_log_in_and_try_tasks_get_all(server: Server, page, tmp_path: Path) -> None:
    api = Api(server)
    try:
        task = api.ok("tasks.create", name="shown in the reference page", type="training")["id"]
    finally:
        api.close()
    assert "2.26" in page.inner_text(".swagger-ui .info .title")  # the max version comes first

    page.select_option(".download-url-wrapper select", label=PICKED)
    page.wait_for_selector(f".swagger-ui .info .title:has-text('specgate RPC API {PICKED}')")

    page.fill("#access-key", server.access_key)
    page.fill("#secret-key", server.secret_key)
    page.click("#login-button")
    page.wait_for_selector("#login-status:has-text('authorized')")
    page.wait_for_selector(".swagger-ui .btn.authorize.locked")  # swagger-ui holds the Bearer token now
    page.screenshot(path=str(tmp_path / "docs-top.png"))

    body = '{"name": "^shown in the reference", "only_fields": ["id", "name"]}'
    answer = try_it(page, "tasks", "post", f"/v{PICKED}/tasks.get_all", body)
    assert answer.locator(".response-col_status").inner_text().strip() == "200"
    text = answer.locator(".response-col_description").inner_text()
    answer.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "docs.png"))
    assert task in text and "shown in the reference page" in text and '"result_code": 200' in text
    assert f'"requested_version": "{PICKED}"' in text


def test_a_pasted_token_authorizes_a_rest_dialect_too(server: Server, page, tmp_path: Path) -> None:
    api = Api(server)
    api.close()
    page.fill("#token", api.token)
    page.click("#token-button")
    page.wait_for_selector("#login-status:has-text('authorized (token)')")
    page.select_option(".download-url-wrapper select", label="cvat (REST)")
    page.wait_for_selector(".swagger-ui .info .title:has-text('specgate cvat API')")
    page.wait_for_selector(".swagger-ui .btn.authorize.locked")  # kept across documents
    answer = try_it(page, "cvat_tasks", "get", "/api/tasks")
    assert answer.locator(".response-col_status").inner_text().strip() == "200"
    assert '"results"' in answer.locator(".response-col_description").inner_text()  # the page_number envelope
    page.screenshot(path=str(tmp_path / "cvat.png"))
