"""The real ``clearml`` SDK's APIClient against the gateway, configured only through the environment:
projects.create → tasks.create → get_all (only_fields, paging) → edit → clone → delete."""

from __future__ import annotations

import uuid

import pytest

from .test_tasks_support import task  # noqa: F401  (also registers the handlers)

# The SDK's bundled HOCON parser calls pyparsing's deprecated camelCase API: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::pyparsing.warnings.PyparsingDeprecationWarning")


@pytest.fixture
def client(server, tmp_path, monkeypatch):
    config = tmp_path / "clearml.conf"
    config.write_text("")
    for name, value in {
        "CLEARML_API_HOST": server.url,
        "CLEARML_WEB_HOST": server.url,
        "CLEARML_FILES_HOST": server.url,
        "CLEARML_API_ACCESS_KEY": server.access_key,
        "CLEARML_API_SECRET_KEY": server.secret_key,
        "CLEARML_CONFIG_FILE": str(config),
        "HOME": str(tmp_path),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CLEARML_OFFLINE_MODE", raising=False)
    from clearml.backend_api.session.client import APIClient

    api_client = APIClient()
    yield api_client
    http = getattr(api_client.session, "_Session__http_session", None)  # the SDK has no close()
    if http is not None:
        http.close()


def test_sdk_task_lifecycle(client, sdk_sockets_absorbed) -> None:
    from clearml.backend_api.session.client import APIError

    project = client.projects.create(name=f"sdk project {uuid.uuid4().hex[:6]}", description="").id
    created = [client.tasks.create(name=f"sdk task {i}", type="training", project=project).id for i in range(3)]
    assert all(len(task_id) == 32 for task_id in created)

    first_page = client.tasks.get_all(project=[project], only_fields=["id", "name"], order_by=["name"],
                                      page=0, page_size=2)
    second_page = client.tasks.get_all(project=[project], only_fields=["id", "name"], order_by=["name"],
                                       page=1, page_size=2)
    assert [t.name for t in first_page] == ["sdk task 0", "sdk task 1"]
    assert [t.id for t in second_page] == [created[2]]
    assert second_page[0].status is None  # not projected

    edited = client.tasks.edit(task=created[0], force=True, comment="edited by the SDK",
                               script={"repository": "https://example.invalid/repo.git", "entry_point": "train.py"})
    assert edited.updated == 1
    loaded = client.tasks.get_by_id(task=created[0])
    assert loaded.comment == "edited by the SDK" and loaded.script.entry_point == "train.py"
    assert str(loaded.status.value) == "created"

    clone_id = client.tasks.clone(task=created[0], new_task_name="sdk clone").id
    clone = client.tasks.get_by_id(task=clone_id)
    assert clone.name == "sdk clone" and clone.parent == created[0] and clone.project == project
    assert clone.script.entry_point == "train.py"

    client.tasks.started(task=clone_id)
    with pytest.raises(APIError) as raised:
        client.tasks.delete(task=clone_id)
    assert "Task cannot be deleted" in str(raised.value)
    deleted = client.tasks.delete(task=clone_id, force=True)
    assert deleted.deleted is True
    with pytest.raises(APIError):
        client.tasks.get_by_id(task=clone_id)
    assert sorted(t.id for t in client.tasks.get_all(project=[project], only_fields=["id"])) == sorted(created)
