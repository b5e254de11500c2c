"""The official Python `fluvio` client (PyPI, 0.21: SPU protocol version 24) against the real
`taskstream serve`: list the appliance's topics, create a topic, produce and consume it back,
consume task events made over REST, and be refused (clearly) when producing to an appliance
topic, which is read-only to Fluvio clients by default.

Run by .ci/run in a venv:  python tests/python/fluvio_client_test.py <path to taskstream binary>
Prints one `N passed, N failed` line and exits non-zero on any failure.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

from fluvio import Fluvio, FluvioAdmin, FluvioConfig, Offset, TopicSpec

SECRET = "python-client-test-secret-0123456789"
TIMEOUT_S = 30


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
        self.dir = tempfile.mkdtemp(prefix="taskstream-py-")
        self.http = free_port()
        self.sc = f"127.0.0.1:{free_port()}"
        self.spu = f"127.0.0.1:{free_port()}"
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--data-dir", os.path.join(self.dir, "data"),
             "--http-addr", f"127.0.0.1:{self.http}", "--jwt-secret", SECRET,
             "--fluvio-sc-addr", self.sc, "--fluvio-spu-addr", self.spu],
            stdout=self.log, stderr=self.log, cwd=self.dir,
        )
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("taskstream did not become ready")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=TIMEOUT_S)
        self.log.close()

    def create_task(self, sub, title):
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.http}/api/tasks",
            data=json.dumps({"title": title}).encode(),
            headers={"Authorization": f"Bearer {token(sub)}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as r:
            assert r.status == 201, r.status
            return json.loads(r.read())


def consume(fluvio, topic, count):
    consumer = fluvio.partition_consumer(topic, 0)
    records = []
    for record in consumer.stream(Offset.beginning()):
        records.append((record.key_string(), record.value_string()))
        if len(records) == count:
            break
    return records


def test_lists_the_appliance_topics(server):
    admin = FluvioAdmin.connect_with_config(FluvioConfig.new(server.sc))
    names = {topic.name() for topic in admin.list_topics([])}
    for topic in ("task-events", "reminders", "task-updates"):
        assert topic in names, f"{topic} not in {names}"


def test_produce_and_consume_round_trip(server):
    admin = FluvioAdmin.connect_with_config(FluvioConfig.new(server.sc))
    admin.create_topic("py-scratch", TopicSpec.create().build())
    fluvio = Fluvio.connect_with_config(FluvioConfig.new(server.sc))
    producer = fluvio.topic_producer("py-scratch")
    for n in range(3):
        producer.send(f"k{n}".encode(), f"v{n}".encode())
    producer.flush()
    assert consume(fluvio, "py-scratch", 3) == [("k0", "v0"), ("k1", "v1"), ("k2", "v2")]


def test_consumes_task_events_made_over_rest(server):
    task = server.create_task("alice", "seen from Python")
    fluvio = Fluvio.connect_with_config(FluvioConfig.new(server.sc))
    key, value = consume(fluvio, "task-events", 1)[0]
    envelope = json.loads(value)
    assert key == task["id"], (key, task["id"])
    assert envelope["event_type"] == "task.created"
    assert envelope["payload"]["title"] == "seen from Python"


def test_producing_to_an_appliance_topic_is_refused_by_default(server):
    fluvio = Fluvio.connect_with_config(FluvioConfig.new(server.sc))
    producer = fluvio.topic_producer("task-events")
    output = producer.send(b"", b"forged event")
    try:
        producer.flush()
        output.wait()
    except Exception as error:  # noqa: BLE001 - the client raises FluvioError (or a subclass)
        message = str(error)
        assert "read-only" in message and "--fluvio-read-only=false" in message, message
    else:
        raise AssertionError("producing to task-events was accepted")


def main():
    tests = [test_lists_the_appliance_topics, test_produce_and_consume_round_trip,
             test_consumes_task_events_made_over_rest,
             test_producing_to_an_appliance_topic_is_refused_by_default]
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
    print(f"fluvio-python: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    BIN = os.path.abspath(sys.argv[1])
    sys.exit(main())
