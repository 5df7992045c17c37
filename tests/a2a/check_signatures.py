#!/usr/bin/env python3
"""Sign and verify agent cards both ways between Agentry and A2A's Python SDK.

Run inside a virtualenv holding one SDK line with its signing extra
(a2a-sdk==0.3.26 or a2a-sdk==1.3.0, and PyJWT); tests/sdk/a2a.sh does:

  check_signatures.py [--agentry target/debug/agentry] [--version 0.3|1.0] [--verbose]

With keys made afresh for each algorithm (ES256, ES384, RS256, PS256, EdDSA):

  a. a card signed by `agentry card sign` is checked by the SDK's
     `a2a.utils.signing.create_signature_verifier`;
  b. a card signed by the SDK's `create_agent_card_signer` is checked by
     `agentry card verify`, which must name the canonical form it matched;
  c. each of those cards, changed after signing, fails both.

The SDK does not canonicalize cards as the A2A specification does (see
docs/a2a.md), so some combinations fail on purpose, and are expected to:
a card signed in the specification's form (`--form jcs`) is refused by the
0.3 SDK, which leaves out `protocolVersion` "0.3.0" and other pydantic
defaults; the 1.x SDK refuses it when the card holds an empty value the
specification keeps (here a security requirement without scopes). The exit
status is 1 when any outcome differs from what EXPECTED says; each such
difference is printed (--verbose prints every check). The binary is
--agentry, else $AGENTRY_BIN, else target/debug/agentry of this checkout.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from a2a.utils.signing import (
    SignatureVerificationError,
    create_agent_card_signer,
    create_signature_verifier,
)

ROOT = Path(__file__).resolve().parents[2]
ALGORITHMS = ["ES256", "ES384", "RS256", "PS256", "EdDSA"]

_SKILL = {"id": "book", "name": "Book", "description": "Books a trip", "tags": ["travel"]}
_EXTENSION = {"uri": "urn:example:limits", "params": {"perDay": 10, "ratio": 0.5, "weight": 1.0}}

CARDS = {
    "0.3": {
        "v03": {
            "protocolVersion": "0.3.0",
            "name": "Réservations ✈",
            "description": "Books trips",
            "version": "1.0.0",
            "url": "https://travel.example/a2a",
            "preferredTransport": "JSONRPC",
            "capabilities": {"streaming": True, "extensions": [_EXTENSION]},
            "defaultInputModes": ["text/plain"],
            "defaultOutputModes": ["text/plain"],
            "securitySchemes": {"key": {"type": "apiKey", "name": "X-Key", "in": "header"}},
            "security": [{"key": []}],
            "skills": [_SKILL],
        },
    },
    "1.0": {
        "v10-plain": {
            "name": "Réservations ✈",
            "description": "Books trips",
            "version": "1.0.0",
            "supportedInterfaces": [
                {"url": "https://travel.example/a2a", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
            ],
            "capabilities": {"streaming": True, "extensions": [_EXTENSION]},
            "defaultInputModes": ["text/plain"],
            "defaultOutputModes": ["text/plain"],
            "securitySchemes": {
                "oidc": {"openIdConnectSecurityScheme": {
                    "openIdConnectUrl": "https://id.example/.well-known/openid-configuration"}}
            },
            "securityRequirements": [{"schemes": {"oidc": {"list": ["openid"]}}}],
            "skills": [_SKILL],
        },
        "v10-empty-scopes": {
            "name": "Travel",
            "description": "Books trips",
            "version": "1.0.0",
            "supportedInterfaces": [
                {"url": "https://travel.example/a2a", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
            ],
            "capabilities": {"streaming": True},
            "defaultInputModes": ["text/plain"],
            "defaultOutputModes": ["text/plain"],
            "securitySchemes": {"key": {"apiKeySecurityScheme": {"name": "X-Key", "location": "header"}}},
            "securityRequirements": [{"schemes": {"key": {"list": []}}}],
            "skills": [_SKILL],
        },
    },
}

# Per card: whether the SDK accepts Agentry's signature in each form (a), and
# the form `agentry card verify` names for a signature in each form and for
# the SDK's (b). Where the two forms of a card are the same bytes, Agentry
# names the specification's.
EXPECTED = {
    "v03": {
        "sdk accepts jcs": False, "sdk accepts a2a-python": True,
        "agentry names jcs": "jcs", "agentry names a2a-python": "a2a-python", "agentry names sdk": "a2a-python",
    },
    "v10-plain": {
        "sdk accepts jcs": True, "sdk accepts a2a-python": True,
        "agentry names jcs": "jcs", "agentry names a2a-python": "jcs", "agentry names sdk": "jcs",
    },
    "v10-empty-scopes": {
        "sdk accepts jcs": False, "sdk accepts a2a-python": True,
        "agentry names jcs": "jcs", "agentry names a2a-python": "a2a-python", "agentry names sdk": "a2a-python",
    },
}


def new_key(alg: str):
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "ES384":
        return ec.generate_private_key(ec.SECP384R1())
    if alg in ("RS256", "PS256"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ed25519.Ed25519PrivateKey.generate()


class Keys:
    """One fresh key pair per algorithm, as PEM files and one JWK set."""

    def __init__(self, folder: Path):
        self.private: dict[str, bytes] = {}
        self.public: dict[str, bytes] = {}
        jwks = []
        for alg in ALGORITHMS:
            key = new_key(alg)
            kid = f"{alg.lower()}-key"
            self.private[kid] = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            self.public[kid] = key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            (folder / f"{kid}.pem").write_bytes(self.private[kid])
            jwk = jwt.get_algorithm_by_name(alg).to_jwk(key.public_key(), as_dict=True)
            jwks.append({**jwk, "kid": kid})
        self.jwks = folder / "jwks.json"
        self.jwks.write_text(json.dumps({"keys": jwks}))

    def provider(self, kid, _jku):
        if kid not in self.public:
            raise jwt.exceptions.InvalidKeyError(f"no key {kid}")
        return self.public[kid]


class Sdk:
    """The installed SDK line's card model and signing helpers."""

    def __init__(self, line: str):
        self.line = line
        if line == "0.3":
            from a2a.types import AgentCard

            self._parse = AgentCard.model_validate
            self._dump = lambda card: card.model_dump(mode="json", by_alias=True, exclude_none=True)
        else:
            from a2a.client.card_resolver import parse_agent_card
            from google.protobuf.json_format import MessageToDict

            self._parse = parse_agent_card
            self._dump = MessageToDict

    def sign(self, card: dict, alg: str, kid: str, key: bytes) -> dict:
        signer = create_agent_card_signer(key, {"alg": alg, "kid": kid, "typ": "JOSE"})
        return self._dump(signer(self._parse(copy.deepcopy(card))))

    def accepts(self, card: dict, keys: Keys) -> bool:
        verifier = create_signature_verifier(keys.provider, ALGORITHMS)
        try:
            verifier(self._parse(copy.deepcopy(card)))
            return True
        except SignatureVerificationError:
            return False


class Agentry:
    FORMS = {
        "over the specification's RFC 8785 form": "jcs",
        "over the canonical form of A2A's Python SDK": "a2a-python",
    }

    def __init__(self, binary: str, folder: Path):
        self.binary = binary
        self.folder = folder

    def _card_file(self, card: dict) -> Path:
        path = self.folder / "card.json"
        path.write_text(json.dumps(card, ensure_ascii=False))
        return path

    def sign(self, card: dict, kid: str, alg: str, form: str) -> dict:
        key = self.folder / f"{kid}.pem"
        run = subprocess.run(
            [self.binary, "card", "sign", "--key", str(key), "--kid", kid, "--alg", alg,
             "--form", form, str(self._card_file(card))],
            capture_output=True, text=True, check=False,
        )
        if run.returncode != 0:
            raise RuntimeError(f"agentry card sign failed: {run.stderr.strip()}")
        return json.loads(run.stdout)

    def verify(self, card: dict, keys: Keys) -> str:
        """The form a signature verified over, or the outcome's first word."""
        run = subprocess.run(
            [self.binary, "card", "verify", "--keys", str(keys.jwks), str(self._card_file(card))],
            capture_output=True, text=True, check=False,
        )
        outcome = run.stdout.strip()
        if run.returncode == 0:
            for phrase, form in self.FORMS.items():
                if phrase in outcome:
                    return form
        return outcome.split(":")[0] or run.stderr.strip()


def tampered(card: dict) -> dict:
    card = copy.deepcopy(card)
    card["skills"][0]["description"] = "Books and cancels trips"
    return card


def main() -> int:
    installed = metadata.version("a2a-sdk")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", choices=sorted(CARDS), default="0.3" if installed.startswith("0.") else "1.0")
    parser.add_argument("--agentry", default=os.environ.get("AGENTRY_BIN", str(ROOT / "target/debug/agentry")))
    parser.add_argument("--verbose", action="store_true", help="print every check, not only differences")
    args = parser.parse_args()
    sdk = Sdk(args.version)
    checks = failures = 0

    def check(what: str, got, expected) -> None:
        nonlocal checks, failures
        ok = got == expected
        checks += 1
        failures += not ok
        if args.verbose or not ok:
            print(f"{'ok  ' if ok else 'FAIL'} {what}: {got}" + ("" if ok else f" (expected {expected})"))

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        keys = Keys(folder)
        agentry = Agentry(args.agentry, folder)
        for name, card in CARDS[args.version].items():
            expected = EXPECTED[name]
            for alg in ALGORITHMS:
                kid = f"{alg.lower()}-key"
                at = f"{name} {alg}"
                for form in ("jcs", "a2a-python"):
                    signed = agentry.sign(card, kid, alg, form)
                    check(f"{at}: agentry --form {form} -> SDK accepts", sdk.accepts(signed, keys),
                          expected[f"sdk accepts {form}"])
                    if expected[f"sdk accepts {form}"]:
                        check(f"{at}: agentry --form {form}, changed -> SDK accepts",
                              sdk.accepts(tampered(signed), keys), False)
                    check(f"{at}: agentry --form {form} -> agentry verify", agentry.verify(signed, keys),
                          expected[f"agentry names {form}"])
                    check(f"{at}: agentry --form {form}, changed -> agentry verify",
                          agentry.verify(tampered(signed), keys), "invalid")
                by_sdk = sdk.sign(card, alg, kid, keys.private[kid])
                check(f"{at}: SDK -> SDK accepts", sdk.accepts(by_sdk, keys), True)
                check(f"{at}: SDK -> agentry verify", agentry.verify(by_sdk, keys), expected["agentry names sdk"])
                check(f"{at}: SDK, changed -> agentry verify", agentry.verify(tampered(by_sdk), keys), "invalid")
                check(f"{at}: SDK, changed -> SDK accepts", sdk.accepts(tampered(by_sdk), keys), False)
    summary = f"a2a-sdk {installed}: {checks} signature checks, "
    print(summary + (f"{failures} unexpected" if failures else "each as expected"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
