#!/usr/bin/env python3
"""Watch real A2A agents, served by A2A's Python SDK, with Agentry's checker.

Run inside a virtualenv holding a2a-sdk 1.x with its HTTP server extra and
uvicorn; tests/sdk/a2a.sh does:

  check_watching.py [--agentry target/debug/agentry]

It starts an A2A agent with the SDK's own Starlette routes (its agent card
route, whose card a modifier can change or slow down, and its JSON-RPC
endpoint) under uvicorn on loopback, and `agentry serve` on a fresh data
folder whose configuration gives checks one second. It registers the agent
with the card the SDK serves, turns watching on for the tenant and asks for
checks (`POST /_agentry/a2a/watch`), then moves the agent through its states
and waits for each outcome in the registration's `@agentry.health`:

  up -> healthy; card changed -> drifted (with what changed); slow -> no
  answer within 1 s; oversized card -> larger than 256 KiB; redirected (a
  plain Starlette redirect in front of the agent) -> not followed; stopped
  -> connection refused.

One summary line; the exit status is 1 when any check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.responses import RedirectResponse
from starlette.routing import Route

from a2a.server.agent_execution import AgentExecutor
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore
from a2a.types import AgentCapabilities, AgentCard, AgentInterface, AgentSkill

ROOT = Path(__file__).resolve().parents[2]
PRINCIPAL = "a0b1c2d3-0000-4000-8000-00000000000a"
ADMIN_APP = "00000000-0000-0000-0000-0000000000ad"


class Failure(Exception):
    pass


class Idle(AgentExecutor):
    """An agent that does nothing: only its card matters here."""

    async def execute(self, context, event_queue) -> None:  # noqa: D102
        return None

    async def cancel(self, context, event_queue) -> None:  # noqa: D102
        return None


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class Served:
    """A Starlette app under uvicorn on loopback, in a thread of its own."""

    def __init__(self, make_app):
        self.sock = free_socket()
        self.origin = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        app = make_app(self.origin)
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self.server.started:
            raise Failure("uvicorn did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


class Agent:
    """An A2A agent served by the SDK, whose card `mode` shapes."""

    def __init__(self):
        self.mode = "up"
        self.served: Served | None = None
        self.registered: dict = {}

    def card(self, origin: str) -> AgentCard:
        return AgentCard(
            name="Travel",
            description="Books trips",
            version="1.0.0",
            supported_interfaces=[
                AgentInterface(url=f"{origin}/a2a", protocol_binding="JSONRPC", protocol_version="1.0")
            ],
            capabilities=AgentCapabilities(streaming=False),
            default_input_modes=["text/plain"],
            default_output_modes=["text/plain"],
            skills=[AgentSkill(id="book", name="Book", description="Books a trip", tags=["travel"])],
        )

    def start(self) -> None:
        self.served = Served(self.app)

    def app(self, origin: str) -> Starlette:
        card = self.card(origin)

        async def modifier(served: AgentCard) -> AgentCard:
            changed = AgentCard()
            changed.CopyFrom(served)
            if self.mode == "changed":
                changed.description = "Books flights only"
            elif self.mode == "slow":
                await asyncio.sleep(3)
            elif self.mode == "oversized":
                changed.description = "x" * (300 * 1024)
            return changed

        handler = DefaultRequestHandler(agent_executor=Idle(), task_store=InMemoryTaskStore(), agent_card=card)
        routes = create_agent_card_routes(card, card_modifier=modifier) + create_jsonrpc_routes(handler, "/a2a")
        self.registered = agent_card_to_dict(card)
        return Starlette(routes=routes)

    def stop(self) -> None:
        if self.served:
            self.served.stop()


class Agentry:
    """`agentry serve` on a fresh data folder, checks timing out after 1 s."""

    def __init__(self, binary: str, folder: Path):
        self.binary = binary
        self.data = folder / "data"
        self.config = folder / "agentry.toml"
        self.config.write_text("[watch]\ntimeout_seconds = 1\n")
        self.out = folder / "serve.out"
        self.err = folder / "serve.err"
        self.process: subprocess.Popen | None = None
        self.origin = ""

    def start(self) -> None:
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.process = subprocess.Popen(
                [self.binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(self.data),
                 "--config", str(self.config)],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for word in self.out.read_text(errors="replace").split():
                if word.startswith("http://") and word.endswith("/beta"):
                    self.origin = word[: -len("/beta")]
                    return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise Failure(f"agentry serve did not start: {self.err.read_text(errors='replace').strip()}")

    def token(self, *extra: str) -> str:
        run = subprocess.run([self.binary, "token", "--data-dir", str(self.data), *extra],
                             capture_output=True, text=True, check=False)
        if run.returncode != 0:
            raise Failure(f"agentry token failed: {run.stderr.strip()}")
        return run.stdout.strip()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def call(method: str, url: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request) as response:
            text = response.read()
            return response.status, json.loads(text) if text else {}
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agentry", default=os.environ.get("AGENTRY_BIN", str(ROOT / "target/debug/agentry")))
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    checks = failures = 0

    def check(what: str, got, expected) -> None:
        nonlocal checks, failures
        checks += 1
        if got != expected:
            failures += 1
            print(f"FAIL {what}: {got!r} (expected {expected!r})")

    agent = Agent()
    redirect: Served | None = None
    with tempfile.TemporaryDirectory() as tmp:
        server = Agentry(args.agentry, Path(tmp))
        try:
            server.start()
            token = server.token()
            admin = server.token("--app", ADMIN_APP, "--roles", "Agentry.Admin")
            agent.start()
            base = server.origin

            def register(agent_id: str, card: dict) -> None:
                status, body = call("POST", f"{base}/beta/copilot/agentRegistrations", token, {
                    "id": agent_id, "displayName": agent_id, "ownerIds": [PRINCIPAL], "createdBy": PRINCIPAL,
                    "sourceCreatedDateTime": "2025-02-15T10:00:00Z",
                    "sourceLastModifiedDateTime": "2025-02-16T10:00:00Z", "agentCard": card,
                })
                if status != 201:
                    raise Failure(f"registering {agent_id}: {status} {body}")

            def health_becomes(agent_id: str, state: str) -> dict:
                call("POST", f"{base}/_agentry/a2a/watch", admin)
                health: dict = {}
                for _ in range(200):
                    _, doc = call("GET", f"{base}/beta/copilot/agentRegistrations/{agent_id}", token)
                    health = doc.get("@agentry.health") or {}
                    if health.get("state") == state and health.get("checkedDateTime") != last.get(agent_id):
                        last[agent_id] = health.get("checkedDateTime")
                        return health
                    time.sleep(0.05)
                check(f"{agent_id} becomes {state}", health, f"state {state}")
                return health

            last: dict[str, str] = {}
            register("travel", agent.registered)
            status, _ = call("PATCH", f"{base}/_agentry/a2a/settings", admin,
                             {"watch": {"enabled": True, "intervalSeconds": 3600}})
            check("watching turned on", status, 200)
            time.sleep(1.5)  # the checker learns of it within a pass

            health = health_becomes("travel", "healthy")
            check("up: checked at the well-known URL", health.get("url"),
                  f"{agent.served.origin}/.well-known/agent-card.json")

            agent.mode = "changed"
            health = health_becomes("travel", "drifted")
            check("card changed: what changed", health.get("differences"),
                  [{"pointer": "/description", "change": "changed"}])

            agent.mode = "slow"
            health = health_becomes("travel", "unreachable")
            check("slow: why", health.get("error"), "no answer within 1 s")

            agent.mode = "oversized"
            health = health_becomes("travel", "unreachable")
            check("oversized card: why", health.get("error"), "the card is larger than 256 KiB")

            target = f"{agent.served.origin}/.well-known/agent-card.json"
            redirect = Served(lambda _origin: Starlette(routes=[Route(
                "/.well-known/agent-card.json", lambda _: RedirectResponse(target, status_code=302))]))
            moved = dict(agent.registered)
            moved["supportedInterfaces"] = [dict(moved["supportedInterfaces"][0], url=f"{redirect.origin}/a2a")]
            register("moved", moved)
            health = health_becomes("moved", "unreachable")
            check("redirect: not followed", health.get("error"),
                  f"answered 302 redirecting to {target} (redirects are not followed)")

            agent.mode = "up"
            health = health_becomes("travel", "healthy")
            check("up again: healthy", health.get("state"), "healthy")
            agent.stop()
            health = health_becomes("travel", "unreachable")
            check("stopped: why", health.get("error"), "connection refused")

            status, listed = call("GET", f"{base}/_agentry/a2a/agents?health=unreachable", admin)
            check("control plane: unreachable agents", sorted(e["id"] for e in listed.get("value", [])),
                  ["moved", "travel"])
        except Failure as e:
            print(f"FAIL {e}")
            failures += 1
        finally:
            agent.stop()
            if redirect:
                redirect.stop()
            server.stop()
    print(f"a2a-sdk agents watched: {checks} checks, " + (f"{failures} failed" if failures else "each passed"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
