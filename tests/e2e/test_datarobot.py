"""DataRobot dialect: the official client (datarobot==3.20.0) against a live server at /api/v2.

Covers docs/dialects.md §3: the version/ handshake at construction, the custom task lifecycle
(create, list, get, update, delete), versions uploaded as multipart from a folder (create_clean,
create_from_previous, list, get), offset/limit pagination with absolute next links, and the error
cases the client turns into ClientError (404 unknown id, 422 invalid body, 401 without a valid token).
"""

from __future__ import annotations

import asyncio
import hashlib
import warnings
from pathlib import Path

import datarobot as dr
import httpx
import pytest
from datarobot.client import set_client
from datarobot.enums import CustomTaskOutboundNetworkPolicy
from datarobot.errors import ClientError
from datarobot.models.custom_task import CustomTask
from datarobot.models.custom_task_version import CustomTaskVersion
from datarobot.utils.pagination import unpaginate

from specgate.domain.identity import Identity

ENVIRONMENT = "5e8c889607389fe0f466c72d"  # any ObjectId: specgate keeps no environment catalogue
UNKNOWN = "0123456789abcdef01234567"

# the client builds urllib3's Retry(allowed_methods={}), which urllib3 2.x flags as deprecated
pytestmark = pytest.mark.filterwarnings("ignore:Using an empty collection for 'allowed_methods':FutureWarning")


def make_client(server, token: str, token_type: str = "Token"):
    with warnings.catch_warnings():
        # a version mismatch (or a missing versionString) only warns: make it fail here
        warnings.filterwarnings("error", message=".*(version|Version).*")
        return dr.Client(token=token, endpoint=f"{server.url}/api/v2", token_type=token_type)


@pytest.fixture(scope="module")
def token(api) -> str:
    return api.ok("auth.create_api_token", label="datarobot e2e")["token"]


@pytest.fixture(scope="module")
def main_client(server, token):
    client = make_client(server, token)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def client(main_client):
    """Every test starts with the main client as the SDK's global one (some tests swap it)."""
    set_client(main_client)
    yield main_client
    set_client(main_client)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "task"
    (root / "helpers").mkdir(parents=True)
    (root / "custom.py").write_text("def fit(X, y, output_dir, **kwargs):\n    pass\n")
    (root / "requirements.txt").write_text("numpy>=1.20,<3\npandas==2.2.0\n# a comment\n")
    (root / "helpers" / "util.py").write_text("VALUE = 1\n")
    return root


def test_version_handshake(server, token) -> None:
    r = httpx.get(f"{server.url}/api/v2/version/", headers={"Authorization": f"Token {token}"})
    assert r.status_code == 200
    body = r.json()
    assert (body["major"], body["minor"], body["versionString"]) == (2, 49, "2.49.0")


def test_custom_task_lifecycle(folder: Path) -> None:
    task = CustomTask.create(name="dr-lifecycle", target_type="Binary", language="python", description="first")
    assert len(task.id) == 24 and int(task.id, 16) >= 0
    assert (task.name, task.target_type, task.language, task.description) == ("dr-lifecycle", "Binary", "python", "first")
    assert task.latest_version is None and task.created_by and task.created_at and task.updated_at

    fetched = CustomTask.get(task.id)
    assert (fetched.id, fetched.name, fetched.description) == (task.id, "dr-lifecycle", "first")
    assert task.id in [t.id for t in CustomTask.list()]
    assert [t.id for t in CustomTask.list(search_for="DR-LIFECYCLE")] == [task.id]
    assert CustomTask.list(search_for="no such task anywhere") == []

    task.update(name="dr-lifecycle-renamed", description="second")
    assert (task.name, task.description, task.language) == ("dr-lifecycle-renamed", "second", "python")
    task.refresh()
    assert task.name == "dr-lifecycle-renamed"

    # first version: the folder's files, paths relative to it
    v1 = CustomTaskVersion.create_clean(task.id, ENVIRONMENT, folder_path=str(folder))
    assert (v1.custom_task_id, v1.version_major, v1.version_minor, v1.label) == (task.id, 1, 0, "v1.0")
    assert v1.is_frozen is False and v1.base_environment_id == ENVIRONMENT
    assert v1.outbound_network_policy.name == "ISOLATED"
    by_path = {item.file_path: item for item in v1.items}
    assert sorted(by_path) == ["custom.py", "helpers/util.py", "requirements.txt"]
    assert by_path["helpers/util.py"].file_name == "util.py"
    assert by_path["custom.py"].file_source == "local"
    assert sorted(d.package_name for d in v1.dependencies) == ["numpy", "pandas"]

    task.refresh()
    assert task.latest_version is not None and task.latest_version.id == v1.id

    # a minor version from scratch again, then a major one from the previous files
    v2 = CustomTaskVersion.create_clean(task.id, ENVIRONMENT, is_major_update=False, folder_path=str(folder / "helpers"))
    assert (v2.version_major, v2.version_minor) == (1, 1)
    assert [i.file_path for i in v2.items] == ["util.py"]

    extra = folder.parent / "extra"
    extra.mkdir()
    (extra / "util.py").write_text("VALUE = 2\n")
    (extra / "new.py").write_text("NEW = True\n")
    v3 = CustomTaskVersion.create_from_previous(
        task.id, ENVIRONMENT, folder_path=str(extra), outbound_network_policy=CustomTaskOutboundNetworkPolicy.PUBLIC
    )
    assert (v3.version_major, v3.version_minor, v3.label) == (2, 0, "v2.0")
    assert sorted(i.file_path for i in v3.items) == ["new.py", "util.py"]
    assert v3.outbound_network_policy.name == "PUBLIC"
    replaced = next(i for i in v3.items if i.file_path == "util.py")
    assert replaced.id != v2.items[0].id

    new_item = next(i for i in v3.items if i.file_path == "new.py")
    v4 = CustomTaskVersion.create_from_previous(task.id, ENVIRONMENT, is_major_update=False, files_to_delete=[new_item.id])
    assert (v4.version_major, v4.version_minor) == (2, 1)
    assert [i.file_path for i in v4.items] == ["util.py"] and v4.items[0].id == replaced.id
    assert v4.outbound_network_policy.name == "PUBLIC"  # inherited from the previous version

    versions = CustomTaskVersion.list(task.id)
    assert [(v.version_major, v.version_minor) for v in versions] == [(2, 1), (2, 0), (1, 1), (1, 0)]
    again = CustomTaskVersion.get(task.id, v1.id)
    assert again.id == v1.id and sorted(i.file_path for i in again.items) == sorted(by_path)
    assert CustomTask.get(task.id).latest_version.id == v4.id

    task.delete()
    with pytest.raises(ClientError) as caught:
        CustomTask.get(task.id)
    assert caught.value.status_code == 404
    with pytest.raises(ClientError) as caught:
        CustomTaskVersion.get(task.id, v1.id)
    assert caught.value.status_code == 404
    assert task.id not in [t.id for t in CustomTask.list()]


def test_upload_metadata_is_recorded(server, token, tmp_path: Path) -> None:
    task = CustomTask.create(name="dr-upload", target_type="Regression")
    (tmp_path / "data.bin").write_bytes(bytes(range(256)) * 4)
    version = CustomTaskVersion.create_clean(task.id, ENVIRONMENT, folder_path=str(tmp_path))
    r = httpx.get(f"{server.url}/api/v2/customTasks/{task.id}/versions/{version.id}/",
                  headers={"Authorization": f"Token {token}"})  # fmt: skip
    assert r.status_code == 200
    (item,) = r.json()["items"]
    assert item["filePath"] == "data.bin" and item["size"] == 1024
    assert item["sha256"] == hashlib.sha256(bytes(range(256)) * 4).hexdigest()
    r = httpx.delete(f"{server.url}/api/v2/customTasks/{task.id}/", headers={"Authorization": f"Token {token}"})
    assert (r.status_code, r.content) == (204, b"")


async def test_concurrent_uploads_get_distinct_version_numbers(server, token) -> None:
    task = CustomTask.create(name="dr-race", target_type="Binary")
    url = f"{server.url}/api/v2/customTasks/{task.id}/versions/"
    fields = [("isMajorUpdate", (None, "False")), ("baseEnvironmentId", (None, ENVIRONMENT))]

    async with httpx.AsyncClient(headers={"Authorization": f"Token {token}"}, timeout=30) as http:
        async def upload(i: int) -> dict:
            r = await http.post(url, files=[*fields, ("file", ("f.py", f"N = {i}".encode())), ("filePath", (None, "f.py"))])
            assert r.status_code == 201, r.text
            return r.json()

        made = await asyncio.gather(*(upload(i) for i in range(6)))
    numbers = sorted((v["versionMajor"], v["versionMinor"]) for v in made)
    assert numbers == [(1, 0), (1, 1), (1, 2), (1, 3), (1, 4), (1, 5)]
    assert len(CustomTaskVersion.list(task.id)) == 6
    assert CustomTask.get(task.id).latest_version.version_minor == 5
    task.delete()


def test_pagination_links_are_absolute_and_followed(client, server) -> None:
    made = [CustomTask.create(name=f"dr-page-{i}", target_type="Regression") for i in range(3)]
    first = client.get("customTasks/", params={"limit": 2, "search_for": "dr-page-"}).json()
    assert (first["count"], first["totalCount"], len(first["data"])) == (2, 3, 2)
    assert first["next"].startswith(f"{server.url}/api/v2/customTasks/?") and first["previous"] is None
    # newest first by default
    assert [t["name"] for t in first["data"]] == ["dr-page-2", "dr-page-1"]
    walked = list(unpaginate("customTasks/", {"limit": 1, "search_for": "dr-page-", "order_by": "created"}, client))
    assert [t["name"] for t in walked] == ["dr-page-0", "dr-page-1", "dr-page-2"]
    for task in made:
        task.delete()


def test_unknown_ids_are_404(client) -> None:
    for call in (
        lambda: CustomTask.get(UNKNOWN),
        lambda: CustomTask.get("not-an-object-id"),
        lambda: CustomTaskVersion.list(UNKNOWN),
        lambda: CustomTaskVersion.create_clean(UNKNOWN, ENVIRONMENT),
        lambda: client.delete(f"customTasks/{UNKNOWN}/"),
    ):
        with pytest.raises(ClientError) as caught:
            call()
        assert caught.value.status_code == 404
        assert caught.value.json["message"]
    task = CustomTask.create(name="dr-404", target_type="Binary")
    with pytest.raises(ClientError) as caught:
        CustomTaskVersion.get(task.id, UNKNOWN)
    assert caught.value.status_code == 404
    task.delete()


def test_invalid_bodies_are_422(server, token) -> None:
    with pytest.raises(ClientError) as caught:
        CustomTask.create(name="dr-bad", target_type="Binary", language=5)
    assert caught.value.status_code == 422
    assert caught.value.json["message"] and "language" in caught.value.json["errors"]
    with pytest.raises(ClientError) as caught:
        CustomTask.create(name="", target_type="Binary")
    assert caught.value.status_code == 422

    task = CustomTask.create(name="dr-422", target_type="Binary")
    with pytest.raises(ClientError) as caught:
        CustomTaskVersion.create_clean(task.id, "not-an-environment-id")
    assert caught.value.status_code == 422 and "baseEnvironmentId" in caught.value.json["errors"]
    with pytest.raises(ClientError) as caught:
        CustomTaskVersion.create_from_previous(task.id, ENVIRONMENT, files_to_delete=[UNKNOWN])
    assert caught.value.status_code == 422
    with pytest.raises(ClientError) as caught:
        task.update(name="")
    assert caught.value.status_code == 422

    # the raw answer: message + errors, Content-Type exactly application/json (the client indexes it)
    r = httpx.post(f"{server.url}/api/v2/customTasks/", json={"targetType": "Nope"},
                   headers={"Authorization": f"Token {token}"})  # fmt: skip
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/json"
    assert set(r.json()) >= {"message", "errors"}
    task.delete()


def test_missing_or_wrong_token_is_401(server, client) -> None:
    anonymous = client.copy()
    anonymous.headers.pop("Authorization")
    set_client(anonymous)
    try:
        with pytest.raises(ClientError) as caught:
            CustomTask.list()
        assert caught.value.status_code == 401
    finally:
        anonymous.close()
    with pytest.raises(ClientError) as caught:
        dr.Client(token="sgt_not-a-real-token", endpoint=f"{server.url}/api/v2")
    assert caught.value.status_code == 401
    r = httpx.get(f"{server.url}/api/v2/customTasks/")
    assert r.status_code == 401 and r.headers["content-type"] == "application/json" and r.json()["message"]


def test_bearer_token_and_company_isolation(server, api, client) -> None:
    mine = CustomTask.create(name="dr-mine", target_type="Anomaly")
    assert mine.calibrate_predictions is True
    # a login token (JWT) works as DataRobot's Bearer token, for the same company
    bearer = make_client(server, api.token, token_type="Bearer")
    try:
        assert mine.id in [t.id for t in CustomTask.list()]
    finally:
        bearer.close()
    # another company's caller sees none of this company's tasks, and the other way round
    other, _ = server.app.rest.services.tokens.issue(Identity("dr-other-user", "dr-other-company", "admin", user_name="other"))
    foreign = make_client(server, other, token_type="Bearer")
    try:
        assert mine.id not in [t.id for t in CustomTask.list()]
        with pytest.raises(ClientError) as caught:
            CustomTask.get(mine.id)
        assert caught.value.status_code == 404
        theirs = CustomTask.create(name="dr-theirs", target_type="Binary")
        assert theirs.created_by == "other"
    finally:
        foreign.close()
    set_client(client)
    assert theirs.id not in [t.id for t in CustomTask.list()]
    mine.delete()
