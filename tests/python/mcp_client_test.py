"""The official Python MCP SDK (PyPI `mcp`) against the real `taskstream` binary: the five task
tools over streamable HTTP at /mcp (Bearer auth, per-user scoping, X-Timezone) and over stdio
(`taskstream mcp --user ...`), next to a running server on the same data directory and alone.

Run by .ci/run in a venv:  python tests/python/mcp_client_test.py <path to taskstream binary>
Prints one `N passed, N failed` line and exits non-zero on any failure.
"""

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

import httpx2
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

SECRET = "python-mcp-test-secret-0123456789abcdef"
TIMEOUT_S = 30
TOOLS = ["add_task", "list_tasks", "complete_task", "update_task", "delete_task",
         "list_projects", "create_project"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def token(sub):
    """An HS256 JWT minted by the binary itself (`taskstream token`)."""
    out = subprocess.run(
        [BIN, "token", "--jwt-secret", SECRET, "--sub", sub],
        check=True, capture_output=True, text=True,
    )
    return out.stdout.strip()


class Server:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="taskstream-mcp-py-")
        self.data = os.path.join(self.dir, "data")
        self.http = free_port()
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--data-dir", self.data,
             "--http-addr", f"127.0.0.1:{self.http}", "--jwt-secret", SECRET,
             "--fluvio-sc-addr", f"127.0.0.1:{free_port()}",
             "--fluvio-spu-addr", f"127.0.0.1:{free_port()}"],
            stdout=self.log, stderr=self.log, cwd=self.dir,
        )
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("taskstream did not become ready")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.http}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=TIMEOUT_S)
        self.log.close()

    def rest(self, sub, path):
        request = urllib.request.Request(
            f"{self.url}{path}", headers={"Authorization": f"Bearer {token(sub)}"})
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as r:
            return json.loads(r.read())


def http_session(server, sub, zone=None):
    """An MCP client session over streamable HTTP, authenticated as `sub`."""
    headers = {"Authorization": f"Bearer {token(sub)}"}
    if zone:
        headers["X-Timezone"] = zone
    client = httpx2.AsyncClient(headers=headers, timeout=TIMEOUT_S)
    return client, streamable_http_client(f"{server.url}/mcp", http_client=client)


async def with_http(server, sub, body, zone=None):
    client, transport = http_session(server, sub, zone)
    async with client, transport as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        return await body(session)


def stdio_params(server, sub):
    return StdioServerParameters(
        command=BIN,
        args=["mcp", "--user", sub, "--data-dir", server.data, "--log-level", "warn"],
        cwd=server.dir,
    )


async def with_stdio(server, sub, body):
    with open(os.path.join(server.dir, f"mcp-stdio-{sub}.log"), "a") as errlog:
        async with stdio_client(stdio_params(server, sub), errlog=errlog) as (read, write), \
                ClientSession(read, write) as session:
            info = await session.initialize()
            assert info.server_info.name == "taskstream", info.server_info
            return await body(session)


async def call(session, name, arguments):
    """Calls a tool; returns (is_error, the `{"success", "data"|"error"}` object)."""
    result = await session.call_tool(name, arguments)
    text = result.content[0].text
    body = json.loads(text)
    assert result.structured_content == body, (result.structured_content, body)
    assert body["success"] == (not result.is_error), body
    return result.is_error, body


async def ok(session, name, arguments):
    is_error, body = await call(session, name, arguments)
    assert not is_error, body
    return body["data"]


def titles(tasks):
    return sorted(task["title"] for task in tasks)


# ---- streamable HTTP ----------------------------------------------------------------------

def test_http_initialize_and_list_the_tools(server):
    async def run():
        client, transport = http_session(server, "alice")
        async with client, transport as (read, write), ClientSession(read, write) as session:
            info = await session.initialize()
            assert info.server_info.name == "taskstream", info.server_info
            assert info.capabilities.tools is not None, info.capabilities
            assert info.instructions and "list_tasks" in info.instructions
            return await session.list_tools()

    listed = asyncio.run(run())
    assert [tool.name for tool in listed.tools] == TOOLS, [t.name for t in listed.tools]
    schemas = {tool.name: tool.input_schema for tool in listed.tools}
    for name, schema in schemas.items():
        assert schema["type"] == "object", (name, schema)
        assert all("description" in p for p in schema["properties"].values()), (name, schema)
    add = schemas["add_task"]
    assert add["required"] == ["title"], add
    assert add["properties"]["tags"] == {
        "type": "array", "items": {"type": "string"}, "description": add["properties"]["tags"]["description"]}
    assert add["properties"]["priority"]["enum"] == ["low", "medium", "high"]
    for prop in ("reminder_offset_minutes", "recurrence_rule", "due_date"):
        assert prop in add["properties"], prop
    for name in ("complete_task", "update_task", "delete_task"):
        assert schemas[name]["required"] == ["task_id"], schemas[name]
    assert schemas["list_tasks"]["required"] == []
    assert "user_id" not in json.dumps(schemas), "the user never comes from tool arguments"


def test_http_calls_every_tool_and_rest_agrees(server):
    async def body(session):
        added = await ok(session, "add_task", {
            "title": "  Water the plants ", "description": "balcony", "priority": "high",
            "due_date": "2030-01-07T09:00:00Z", "tags": ["Home", "garden"],
            "reminder_offset_minutes": 30, "recurrence_rule": "WEEKLY"})
        assert added["title"] == "Water the plants", added
        assert added["tags"] == ["home", "garden"], added
        assert added["reminder_offset_minutes"] == 30 and added["remind_at"].startswith("2030-01-07T08:30")
        assert added["is_recurring"] is True and added["recurrence_rule"] == "WEEKLY", added
        assert "user_id" not in added
        other = await ok(session, "add_task", {"title": "Pay rent"})

        listed = await ok(session, "list_tasks", {})
        assert titles(listed) == ["Pay rent", "Water the plants"], listed
        tagged = await ok(session, "list_tasks", {"tags": ["garden"], "is_recurring": True})
        assert [t["id"] for t in tagged] == [added["id"]], tagged

        updated = await ok(session, "update_task", {
            "task_id": other["id"], "title": "Pay the rent", "priority": "low"})
        assert updated["title"] == "Pay the rent" and updated["priority"] == "low", updated
        assert updated["previous"] == {"title": "Pay rent", "priority": "medium"}, updated

        done = await ok(session, "complete_task", {"task_id": added["id"]})
        assert done["status"] == "completed", done
        nxt = done["next_task"]
        assert nxt and nxt["due_date"].startswith("2030-01-14T09:00"), done
        assert nxt["parent_task_id"] == added["id"] and nxt["status"] == "pending", nxt

        deleted = await ok(session, "delete_task", {"task_id": other["id"]})
        assert deleted["deleted_id"] == other["id"], deleted

        is_error, failure = await call(session, "delete_task", {"task_id": other["id"]})
        assert is_error and failure == {
            "success": False, "error": f"Task not found: {other['id']}"}, failure
        is_error, failure = await call(session, "add_task", {"title": ""})
        assert is_error and failure["error"] == "Title is required", failure
        try:
            await session.call_tool("drop_database", {})
            raise AssertionError("an unknown tool must be a protocol error")
        except MCPError as error:
            assert "Unknown tool" in str(error), error
        return added, nxt, other

    added, nxt, other = asyncio.run(with_http(server, "alice", body))
    rest = {task["id"]: task for task in server.rest("alice", "/api/tasks")}
    assert set(rest) == {added["id"], nxt["id"]}, rest
    assert rest[added["id"]]["status"] == "completed"
    assert rest[nxt["id"]]["tags"] == ["home", "garden"]
    assert rest[nxt["id"]]["user_id"] == "alice"


def test_http_projects_and_subtasks(server):
    async def body(session):
        listed = await session.list_tools()
        schemas = {tool.name: tool.input_schema for tool in listed.tools}
        assert schemas["create_project"]["required"] == ["name"], schemas["create_project"]
        assert "project" in schemas["add_task"]["properties"], schemas["add_task"]
        assert "subtask_of" in schemas["add_task"]["properties"], schemas["add_task"]
        assert "project" in schemas["list_tasks"]["properties"], schemas["list_tasks"]
        tools = {tool.name: tool for tool in listed.tools}
        assert tools["list_projects"].annotations.read_only_hint is True

        garden = await ok(session, "create_project", {"name": "Garden"})
        assert garden["name"] == "Garden" and garden["task_count"] == 0, garden
        is_error, taken = await call(session, "create_project", {"name": "garden"})
        assert is_error and taken["error"] == "A project with this name already exists", taken
        tulips = await ok(session, "add_task", {"title": "Plant tulips", "project": "GARDEN"})
        assert tulips["project_id"] == garden["id"], tulips
        bulbs = await ok(session, "add_task", {"title": "Buy bulbs", "subtask_of": tulips["id"]})
        assert bulbs["subtask_of"] == tulips["id"] and bulbs["project_id"] == garden["id"], bulbs
        is_error, deeper = await call(session, "add_task",
                                      {"title": "Find a shop", "subtask_of": "Buy bulbs"})
        assert is_error and deeper["error"] == "A subtask cannot have subtasks of its own", deeper
        is_error, missing = await call(session, "add_task", {"title": "x", "project": "Orchard"})
        assert is_error and missing["error"].startswith("Project not found: Orchard"), missing
        in_garden = await ok(session, "list_tasks", {"project": "Garden"})
        assert titles(in_garden) == ["Buy bulbs", "Plant tulips"], in_garden
        projects = await ok(session, "list_projects", {})
        assert [(p["name"], p["task_count"], p["open_task_count"]) for p in projects] == \
            [("Garden", 2, 2)], projects
        return garden, tulips, bulbs

    garden, tulips, bulbs = asyncio.run(with_http(server, "dana", body))
    links = server.rest("dana", f"/api/tasks/{bulbs['id']}/links")
    assert links["subtask_of"] == tulips["id"] and links["project_id"] == garden["id"], links
    # Another user sees none of it.
    assert server.rest("erin", "/api/projects") == []


def test_http_tools_see_only_the_token_users_tasks(server):
    async def alice_adds(session):
        return await ok(session, "add_task", {"title": "alice's secret"})

    secret = asyncio.run(with_http(server, "alice", alice_adds))

    async def bob_tries(session):
        # A user_id argument is ignored: the caller is whoever the token says.
        seen = await ok(session, "list_tasks", {"user_id": "alice"})
        assert seen == [], seen
        for name, arguments in [
            ("complete_task", {"task_id": secret["id"]}),
            ("update_task", {"task_id": secret["id"], "title": "mine now"}),
            ("delete_task", {"task_id": secret["id"]}),
        ]:
            is_error, body = await call(session, name, arguments)
            assert is_error and body["error"] == "You don't have access to this task", body
        mine = await ok(session, "add_task", {"title": "bob's own"})
        assert [t["id"] for t in await ok(session, "list_tasks", {})] == [mine["id"]]

    asyncio.run(with_http(server, "bob", bob_tries))
    alice_rest = {t["id"]: t for t in server.rest("alice", "/api/tasks")}
    assert alice_rest[secret["id"]]["title"] == "alice's secret", alice_rest[secret["id"]]
    assert alice_rest[secret["id"]]["status"] == "pending"
    assert all(t["title"] != "bob's own" for t in alice_rest.values())


def test_http_reads_dates_in_the_x_timezone_zone(server):
    async def body(session):
        return await ok(session, "add_task", {"title": "zoned", "due_date": "2030-03-01T09:00"})

    added = asyncio.run(with_http(server, "carol", body, zone="Europe/Berlin"))
    assert added["due_date"].startswith("2030-03-01T08:00"), added


def test_http_without_a_valid_token_is_401(server):
    initialize = json.dumps({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "raw", "version": "0"}}}).encode()
    for auth in (None, "Bearer not-a-token", f"Basic {token('alice')}"):
        headers = {"Content-Type": "application/json",
                   "Accept": "application/json, text/event-stream"}
        if auth:
            headers["Authorization"] = auth
        request = urllib.request.Request(f"{server.url}/mcp", data=initialize,
                                         headers=headers, method="POST")
        try:
            urllib.request.urlopen(request, timeout=TIMEOUT_S)
            raise AssertionError(f"{auth!r} was accepted")
        except urllib.error.HTTPError as error:
            assert error.code == 401, (auth, error.code)
            assert error.headers.get("WWW-Authenticate", "").startswith("Bearer"), error.headers

    async def run():
        async with httpx2.AsyncClient(timeout=TIMEOUT_S) as client, \
                streamable_http_client(f"{server.url}/mcp", http_client=client) as (read, write), \
                ClientSession(read, write, read_timeout_seconds=10) as session:
            await session.initialize()

    refused = False
    try:
        asyncio.run(run())
    except Exception:  # noqa: BLE001 - the SDK surfaces the 401 as an error (or a group)
        refused = True
    assert refused, "the SDK initialized without a token"


# ---- stdio -----------------------------------------------------------------------------------

def wait_for(description, check):
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {description}")


def test_stdio_next_to_the_running_server(server):
    async def body(session):
        listed = await session.list_tools()
        assert [tool.name for tool in listed.tools] == TOOLS
        added = await ok(session, "add_task", {
            "title": "from the desktop", "tags": ["stdio"],
            "due_date": "2030-05-01T10:00:00Z", "reminder_offset_minutes": 15})
        mine = await ok(session, "list_tasks", {})
        return added, mine

    added, mine = asyncio.run(with_stdio(server, "alice", body))
    # Same store as the server: alice's HTTP-made tasks are there too, nobody else's.
    assert "from the desktop" in titles(mine) and "alice's secret" in titles(mine), mine
    assert "bob's own" not in titles(mine)
    rest = {t["id"]: t for t in server.rest("alice", "/api/tasks")}
    assert rest[added["id"]]["tags"] == ["stdio"], rest.get(added["id"])
    # The running server relays the stdio process's outbox rows: the audit consumer sees them.
    wait_for("the server to relay the stdio write", lambda: server.rest(
        "alice", f"/api/audit?task_id={added['id']}&event_type=task.created"))


def test_stdio_with_no_server_running(server):
    server.stop()

    async def body(session):
        assert [tool.name for tool in (await session.list_tools()).tools] == TOOLS
        added = await ok(session, "add_task", {"title": "offline"})
        listed = await ok(session, "list_tasks", {"search": "offline"})
        assert [t["id"] for t in listed] == [added["id"]], listed
        is_error, failure = await call(session, "complete_task", {"task_id": "nope"})
        assert is_error and failure["error"] == "Invalid task ID format: nope", failure

    asyncio.run(with_stdio(server, "dave", body))


def main():
    tests = [test_http_initialize_and_list_the_tools,
             test_http_calls_every_tool_and_rest_agrees,
             test_http_projects_and_subtasks,
             test_http_tools_see_only_the_token_users_tasks,
             test_http_reads_dates_in_the_x_timezone_zone,
             test_http_without_a_valid_token_is_401,
             test_stdio_next_to_the_running_server,
             test_stdio_with_no_server_running]
    passed = failed = 0
    server = Server()
    try:
        for test in tests:
            try:
                test(server)
                passed += 1
                print(f"ok   {test.__name__}")
            except Exception:  # noqa: BLE001 - report every failure, keep going
                failed += 1
                print(f"FAIL {test.__name__}")
                traceback.print_exc()
    finally:
        server.stop()
    if failed:
        print(f"logs in {server.dir}")
    print(f"mcp-python: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    BIN = os.path.abspath(sys.argv[1])
    sys.exit(main())
