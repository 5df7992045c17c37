#!/usr/bin/env python3
"""Fetch the agent cards Agentry serves with A2A's Python SDK card resolver.

Run inside a virtualenv holding one SDK line with its signing extra
(a2a-sdk==0.3.26 or a2a-sdk==1.3.0, and PyJWT); tests/sdk/a2a.sh does:

  check_serving.py [--agentry target/debug/agentry] [--version 0.3|1.0]

It starts its own `agentry serve` on a fresh data folder (stopped at exit,
failure or not), takes a token from `agentry token`, and registers two agents:

  - an agent registration whose `agentCard` is signed by `agentry card sign`
    with tests/a2a/keys/p256.pem: a v1.0 card in the specification's form
    (`--form jcs`) for the 1.0 line, a v0.3 card with `--form a2a-python` for
    the 0.3 line (the form that SDK's verifier rebuilds, see docs/a2a.md);
  - an agent instance with an agent card manifest, unsigned.

Then the SDK's own `A2ACardResolver` fetches each card from
`{origin}/a2a/{tenantId}/agents/{id}/.well-known/agent-card.json`, with the
token and the line's `A2A-Version` (0.3, or 1.0 as the 1.x SDK's client
factory sends) in its http kwargs. The SDK must parse both cards and, through
its `create_signature_verifier` given the p256 public key, accept the
signature as served; a few fields are compared. With another public key the
verifier must raise. Without a token the resolver must fail with 404 until
the tenant publishes a collection holding the instance (PATCH
/_agentry/a2a/settings with an admin token), and then fetch its card; the
registration, in no collection, stays unpublished.
One summary line; the exit status is 1 when any check fails. The binary is
--agentry, else $AGENTRY_BIN, else target/debug/agentry of this checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from a2a.client import A2ACardResolver
from a2a.utils.signing import SignatureVerificationError, create_signature_verifier

ROOT = Path(__file__).resolve().parents[2]
KEYS = ROOT / "tests/a2a/keys"
KID = "p256"
CARD_URL = "https://travel.example/a2a"
INSTANCE_URL = "https://instance.example/a2a"
PRINCIPAL = "a0b1c2d3-0000-4000-8000-00000000000a"

_SKILL = {"id": "book", "name": "Book", "description": "Books a trip", "tags": ["travel"]}

# The card each line registers, signed, and the form it is signed in.
CARDS = {
    "0.3": ("a2a-python", {
        "protocolVersion": "0.3.0",
        "name": "Réservations ✈",
        "description": "Books trips",
        "version": "1.0.0",
        "url": CARD_URL,
        "preferredTransport": "JSONRPC",
        "capabilities": {"streaming": True},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "securitySchemes": {"key": {"type": "apiKey", "name": "X-Key", "in": "header"}},
        "security": [{"key": []}],
        "skills": [_SKILL],
    }),
    "1.0": ("jcs", {
        "name": "Réservations ✈",
        "description": "Books trips",
        "version": "1.0.0",
        "supportedInterfaces": [
            {"url": CARD_URL, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
        ],
        "capabilities": {"streaming": True},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "securitySchemes": {
            "oidc": {"openIdConnectSecurityScheme": {
                "openIdConnectUrl": "https://id.example/.well-known/openid-configuration"}}
        },
        "securityRequirements": [{"schemes": {"oidc": {"list": ["openid"]}}}],
        "skills": [_SKILL],
    }),
}

MANIFEST = {
    "id": "travel-manifest", "displayName": "Instance travel", "description": "Books trips",
    "version": "2.0.0", "ownerIds": [PRINCIPAL],
    "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain"],
    "capabilities": {"streaming": True},
    "skills": [{"id": "book", "displayName": "Book", "description": "Books", "tags": ["travel"]}],
}


class Failure(Exception):
    pass


class Server:
    """`agentry serve` on a fresh data folder, stopped by `stop`."""

    def __init__(self, binary: str, folder: Path):
        self.binary = binary
        self.data = folder / "data"
        self.out = folder / "serve.out"
        self.err = folder / "serve.err"
        self.process: subprocess.Popen | None = None

    def start(self) -> str:
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            try:
                self.process = subprocess.Popen(
                    [self.binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(self.data)],
                    stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                )
            except OSError as e:
                raise Failure(f"cannot run {self.binary}: {e}") from e
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for word in self.out.read_text(errors="replace").split():
                if word.startswith("http://") and word.endswith("/beta"):
                    return word[: -len("/beta")]
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


def tenant_of(token: str) -> str:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["tid"]


def sign(binary: str, folder: Path, card: dict, form: str) -> dict:
    path = folder / "card.json"
    path.write_text(json.dumps(card, ensure_ascii=False), encoding="utf-8")
    run = subprocess.run(
        [binary, "card", "sign", "--key", str(KEYS / "p256.pem"), "--kid", KID, "--form", form, str(path)],
        capture_output=True, text=True, check=False,
    )
    if run.returncode != 0:
        raise Failure(f"agentry card sign failed: {run.stderr.strip()}")
    return json.loads(run.stdout)


def send(method: str, url: str, token: str, body: dict, expected: int) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as e:
        raise Failure(f"{method} {url}: {e.code} {e.read().decode(errors='replace')}") from e
    if status != expected:
        raise Failure(f"{method} {url}: {status}, expected {expected}")
    return json.loads(text) if text else {}


def post(origin: str, token: str, path: str, body: dict, expected: int = 201) -> dict:
    return send("POST", f"{origin}/beta{path}", token, body, expected)


def key_provider(public_pem: bytes):
    def provide(kid, _jku):
        if kid != KID:
            raise jwt.exceptions.InvalidKeyError(f"no key {kid}")
        return public_pem

    return provide


class Line:
    """What differs between the SDK lines: the version header and card fields."""

    def __init__(self, version: str):
        self.version = version
        self.header = {"A2A-Version": version}

    def url(self, card) -> str:
        if self.version == "0.3":
            return card.url
        return card.supported_interfaces[0].url if card.supported_interfaces else ""

    @staticmethod
    def skill_name(card) -> str:
        return card.skills[0].name if card.skills else ""

    @staticmethod
    def signatures(card) -> list[tuple[str, str]]:
        return [(s.protected, s.signature) for s in card.signatures or []]


async def run_checks(args, origin: str, token: str, tenant: str, signed: dict, check, publish) -> None:
    line = Line(args.version)
    seen: list[httpx.Response] = []

    async def remember(response: httpx.Response) -> None:
        seen.append(response)

    good = create_signature_verifier(key_provider((KEYS / "p256.pub.pem").read_bytes()), ["ES256"])
    other = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    wrong = create_signature_verifier(key_provider(other), ["ES256"])
    with_token = {"headers": {"Authorization": f"Bearer {token}", **line.header}}

    async with httpx.AsyncClient(event_hooks={"response": [remember]}) as client:

        def resolver(agent: str) -> A2ACardResolver:
            return A2ACardResolver(client, f"{origin}/a2a/{tenant}/agents/{agent}")

        async def fetch(what: str, agent: str, **kwargs):
            try:
                card = await resolver(agent).get_agent_card(**kwargs)
            except Exception as e:  # noqa: BLE001 - any failure is reported
                check(what, f"{type(e).__name__}: {e}", "a parsed card")
                return None
            check(f"{what}: answered in A2A-Version", seen[-1].headers.get("a2a-version"), args.version)
            return card

        card = await fetch("signed registration card", "travel-registration",
                           http_kwargs=with_token, signature_verifier=good)
        if card is not None:
            check("signed registration card: name", card.name, signed["name"])
            check("signed registration card: url", line.url(card), CARD_URL)
            check("signed registration card: skill", line.skill_name(card), _SKILL["name"])
            check("signed registration card: signatures as stored", line.signatures(card),
                  [(s["protected"], s["signature"]) for s in signed["signatures"]])

        card = await fetch("instance card", "travel-instance", http_kwargs=with_token)
        if card is not None:
            check("instance card: name", card.name, MANIFEST["displayName"])
            check("instance card: url", line.url(card), INSTANCE_URL)
            check("instance card: version", card.version, MANIFEST["version"])
            check("instance card: skill", line.skill_name(card), "Book")

        async def anonymous(agent: str):
            try:
                return await resolver(agent).get_agent_card(http_kwargs={"headers": line.header})
            except Exception as e:  # noqa: BLE001
                return getattr(e, "status_code", None) or f"{type(e).__name__}: {e}"

        check("without a token, unpublished: resolver fails with", await anonymous("travel-instance"), 404)
        publish()
        card = await anonymous("travel-instance")
        check("without a token, published: instance card name",
              getattr(card, "name", card), MANIFEST["displayName"])
        check("without a token, published: Cache-Control", seen[-1].headers.get("cache-control"),
              "public, max-age=300")
        check("without a token: registration stays unpublished", await anonymous("travel-registration"), 404)

        try:
            await resolver("travel-registration").get_agent_card(http_kwargs=with_token, signature_verifier=wrong)
            outcome = "accepted"
        except SignatureVerificationError:
            outcome = "refused"
        except Exception as e:  # noqa: BLE001
            outcome = f"{type(e).__name__}: {e}"
        check("another public key: SDK verifier", outcome, "refused")


def main() -> int:
    installed = metadata.version("a2a-sdk")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", choices=sorted(CARDS), default="0.3" if installed.startswith("0.") else "1.0")
    parser.add_argument("--agentry", default=os.environ.get("AGENTRY_BIN", str(ROOT / "target/debug/agentry")))
    args = parser.parse_args()
    if installed.startswith("0.") != (args.version == "0.3"):
        print(f"FAIL a2a-sdk {installed} is installed, not an SDK of the {args.version} line", file=sys.stderr)
        return 1
    # A termination signal ends the script through `finally`, which stops the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    checks = failures = 0

    def check(what: str, got, expected) -> None:
        nonlocal checks, failures
        checks += 1
        if got != expected:
            failures += 1
            print(f"FAIL {what}: {got!r} (expected {expected!r})")

    form, card = CARDS[args.version]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = Server(args.agentry, folder)
        try:
            origin = server.start()
            token = server.token()
            tenant = tenant_of(token)
            signed = sign(args.agentry, folder, card, form)
            post(origin, token, "/copilot/agentRegistrations", {
                "id": "travel-registration", "displayName": "Travel", "ownerIds": [PRINCIPAL],
                "createdBy": PRINCIPAL, "sourceCreatedDateTime": "2025-02-15T10:00:00Z",
                "sourceLastModifiedDateTime": "2025-02-16T10:00:00Z", "agentCard": signed,
            })
            post(origin, token, "/agentRegistry/agentInstances", {
                "id": "travel-instance", "displayName": "Travel instance", "ownerIds": [PRINCIPAL],
                "url": INSTANCE_URL, "agentCardManifest": MANIFEST,
            })
            public = post(origin, token, "/agentRegistry/agentCollections",
                          {"displayName": "Public", "ownerIds": [PRINCIPAL]})["id"]

            def publish() -> None:
                post(origin, token, f"/agentRegistry/agentCollections/{public}/members/$ref",
                     {"@odata.id": f"{origin}/beta/agentRegistry/agentInstances/travel-instance"}, 204)
                admin = server.token("--app", "00000000-0000-0000-0000-0000000000ad", "--roles", "Agentry.Admin")
                send("PATCH", f"{origin}/_agentry/a2a/settings", admin, {"publishedCollections": [public]}, 200)

            asyncio.run(run_checks(args, origin, token, tenant, signed, check, publish))
        except Failure as e:
            print(f"FAIL {e}")
            failures += 1
        finally:
            server.stop()
    summary = (f"a2a-sdk {installed}: {checks} checks of cards served as v{args.version} "
               f"(signed --form {form}) through A2ACardResolver, ")
    print(summary + (f"{failures} failed" if failures else "each passed"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
