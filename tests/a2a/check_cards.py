#!/usr/bin/env python3
"""Decide every card in tests/a2a/cards with the official A2A Python SDK.

Each card is named <v03|v10>-<valid|invalid>-<short-name>.json. The middle
word is what the A2A specification says about the card; expected.json records
what the SDK says (`sdk_valid`) and why, so the Rust validator can be checked
against both.

Pins (the two SDK lines cannot share a virtualenv; run each in its own):

  v0.3 cards: a2a-sdk==0.3.26 (pydantic==2.14.4). A card is valid when the
              pydantic model `a2a.types.AgentCard.model_validate` accepts it.
  v1.0 cards: a2a-sdk==1.3.0 (protobuf==7.36.2). A card is valid when
              `a2a.client.card_resolver.parse_agent_card` accepts it: that is
              how the 1.x client (A2ACardResolver) reads a card from JSON. It
              maps v0.3 members (url, preferredTransport, security, `type` of
              a security scheme, ...) onto the v1.0 shape and then calls
              `google.protobuf.json_format.ParseDict(card, lf.a2a.v1.AgentCard,
              ignore_unknown_fields=True)`. Nothing on that path checks the
              fields the proto marks REQUIRED; the SDK's own check for them,
              `a2a.utils.proto_utils.validate_proto_required_fields`, is run
              here only to explain lenient verdicts.

Where the SDK accepts a card the specification rejects, `why` starts with
"sdk lenient:" followed by the rule broken and what the SDK made of the card.
For a card the SDK rejects, `why` is the SDK's error. A valid card the SDK
rejects would be marked "sdk strict:", and a valid card the SDK accepts but
reads differently "sdk note:" (there is neither at these pins).

Usage, inside a virtualenv holding the matching pin:

  check_cards.py --version 0.3 [--write] [--verdict-only]
  check_cards.py --version 1.0 [--write] [--verdict-only]

Without --write the current verdicts are compared with expected.json and the
exit status is 1 on any difference (a card without an entry, an entry without
a card, or a changed field; --verdict-only compares `sdk_valid` alone). With
--write the entries of that version are regenerated and the others kept.
--version defaults to the line of the installed a2a-sdk.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
CARDS = HERE / "cards"
EXPECTED = HERE / "expected.json"

PINS = {"0.3": "0.3.26", "1.0": "1.3.0"}
PREFIX = {"0.3": "v03", "1.0": "v10"}
NAME = re.compile(r"^(v03|v10)-(valid|invalid)-[a-z0-9]+(?:-[a-z0-9]+)*\.json$")

# The specification rule each invalid card breaks. Used as the reason when
# the SDK accepts the card anyway; every invalid card must have one.
SPEC_RULES = {
    # v0.3.0: the JSON Schema's `required` lists and the types.ts shapes.
    "v03-invalid-missing-name": "AgentCard.name is required",
    "v03-invalid-missing-description": "AgentCard.description is required",
    "v03-invalid-missing-url": "AgentCard.url is required",
    "v03-invalid-missing-version": "AgentCard.version is required",
    "v03-invalid-missing-capabilities": "AgentCard.capabilities is required",
    "v03-invalid-missing-default-input-modes": "AgentCard.defaultInputModes is required",
    "v03-invalid-missing-default-output-modes": "AgentCard.defaultOutputModes is required",
    "v03-invalid-missing-skills": "AgentCard.skills is required",
    "v03-invalid-missing-protocol-version": "AgentCard.protocolVersion is required in v0.3.0",
    "v03-invalid-name-number": "AgentCard.name is a string",
    "v03-invalid-skills-string": "AgentCard.skills is an array of AgentSkill",
    "v03-invalid-skill-tags-object": "AgentSkill.tags is an array of strings",
    "v03-invalid-skill-missing-id": "AgentSkill.id is required",
    "v03-invalid-skill-missing-name": "AgentSkill.name is required",
    "v03-invalid-skill-missing-description": "AgentSkill.description is required",
    "v03-invalid-skill-missing-tags": "AgentSkill.tags is required",
    "v03-invalid-interface-missing-url": "AgentInterface.url is required",
    "v03-invalid-interface-missing-transport": "AgentInterface.transport is required",
    "v03-invalid-scheme-unknown-type": "SecurityScheme.type is one of apiKey, http, oauth2, openIdConnect, mutualTLS",
    "v03-invalid-scheme-missing-type": "SecurityScheme.type is required (it tells the scheme kind)",
    "v03-invalid-apikey-missing-name": "APIKeySecurityScheme.name is required",
    "v03-invalid-apikey-bad-in": "APIKeySecurityScheme.in is one of query, header, cookie",
    "v03-invalid-oauth2-flow-missing-token-url": "AuthorizationCodeOAuthFlow.tokenUrl is required",
    "v03-invalid-extension-missing-uri": "AgentExtension.uri is required",
    "v03-invalid-signature-missing-signature": "AgentCardSignature.signature is required",
    "v03-invalid-streaming-string": "AgentCapabilities.streaming is a boolean",
    "v03-invalid-snake-case-keys": "v0.3.0 member names are camelCase (defaultInputModes, defaultOutputModes are required)",
    # v1.0: fields marked REQUIRED in a2a.proto, ProtoJSON types, oneofs.
    "v10-invalid-missing-name": "AgentCard.name is REQUIRED",
    "v10-invalid-missing-description": "AgentCard.description is REQUIRED",
    "v10-invalid-missing-version": "AgentCard.version is REQUIRED",
    "v10-invalid-missing-supported-interfaces": "AgentCard.supportedInterfaces is REQUIRED",
    "v10-invalid-missing-capabilities": "AgentCard.capabilities is REQUIRED",
    "v10-invalid-missing-default-input-modes": "AgentCard.defaultInputModes is REQUIRED",
    "v10-invalid-missing-default-output-modes": "AgentCard.defaultOutputModes is REQUIRED",
    "v10-invalid-missing-skills": "AgentCard.skills is REQUIRED",
    "v10-invalid-name-number": "AgentCard.name is a string",
    "v10-invalid-skills-string": "AgentCard.skills is a list of AgentSkill",
    "v10-invalid-skill-tags-object": "AgentSkill.tags is a list of strings",
    "v10-invalid-skill-missing-id": "AgentSkill.id is REQUIRED",
    "v10-invalid-streaming-string": "AgentCapabilities.streaming is a bool",
    "v10-invalid-interface-without-binding": "AgentInterface.protocolBinding is REQUIRED",
    "v10-invalid-interface-without-url": "AgentInterface.url is REQUIRED",
    "v10-invalid-interface-as-string": "supportedInterfaces items are AgentInterface objects",
    "v10-invalid-scheme-unknown-member": "SecurityScheme sets exactly one of its five members",
    "v10-invalid-scheme-two-members": "SecurityScheme sets exactly one of its five members (oneof)",
    "v10-invalid-apikey-without-name": "APIKeySecurityScheme.name is REQUIRED",
    "v10-invalid-apikey-bad-location": "APIKeySecurityScheme.location is one of query, header, cookie",
    "v10-invalid-oauth-two-flows": "OAuthFlows sets exactly one flow (oneof)",
    "v10-invalid-oauth-scopes-list": "OAuth flow scopes is a map of scope to description",
    "v10-invalid-security-requirement-bare-scopes": 'SecurityRequirement.schemes values are StringList objects ({"list": [...]})',
    "v10-invalid-extension-params-string": "AgentExtension.params is an object (google.protobuf.Struct)",
    "v10-invalid-signature-header-string": "AgentCardSignature.header is an object (google.protobuf.Struct)",
}


def installed_sdk() -> str:
    return metadata.version("a2a-sdk")


def path_str(loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(card)"


def camel(name: str) -> str:
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), name)


def empty(value) -> bool:
    return value in (None, "", [], {}, False, 0)


def diff(before, after, loc=()) -> list[str]:
    """What parsing did to the card: members dropped, read under another name, added or changed."""
    notes: list[str] = []
    if isinstance(before, dict) and isinstance(after, dict):
        for key, value in before.items():
            if key in after:
                notes += diff(value, after[key], loc + (key,))
            elif camel(key) != key and camel(key) in after and camel(key) not in before:
                notes.append(f"{path_str(loc + (key,))} read as {camel(key)}")
            elif not empty(value):
                notes.append(f"{path_str(loc + (key,))} ignored")
        for key, value in after.items():
            if key not in before and not any(camel(k) == key for k in before) and not empty(value):
                notes.append(f"{path_str(loc + (key,))} filled in as {json.dumps(value)}")
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for i, (b, a) in enumerate(zip(before, after)):
            notes += diff(b, a, loc + (i,))
    else:
        # Struct numbers come back as floats (5 -> 5.0): not a change.
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (before, after))
        if before != after or (type(before) is not type(after) and not numbers):
            notes.append(f"{path_str(loc)}: {json.dumps(before)} became {json.dumps(after)}")
    return notes


# --- v0.3: the 0.3.x pydantic model -------------------------------------------------


def judge_v03(card) -> tuple[bool, str, list[str]]:
    from a2a.types import AgentCard
    from pydantic import ValidationError

    try:
        model = AgentCard.model_validate(copy.deepcopy(card))
    except ValidationError as err:
        return False, pydantic_reason(err), []
    parsed = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return True, "", diff(card, parsed)


def pydantic_reason(err) -> str:
    errors = err.errors(include_url=False)
    # A security scheme is a union of five models told apart by `type`; drop
    # the members whose `type` literal did not match, keep the one that did.
    wrong_member = {e["loc"][:-1] for e in errors if e["type"] == "literal_error" and e["loc"][-1] == "type"}
    kept = [e for e in errors if not any(e["loc"][: len(p)] == p for p in wrong_member)]
    if not kept:
        by_place: dict = {}
        for e in errors:
            if e["loc"][:-1] in wrong_member and e["loc"][-1] == "type":
                by_place.setdefault(e["loc"][:-2], []).append(e)
        parts = []
        for place, errs in by_place.items():
            expected = ", ".join(str(e["ctx"]["expected"]) for e in errs)
            parts.append(f"{path_str(place)}.type: {json.dumps(errs[0]['input'])} matches no member ({expected}) [literal_error]")
        return "; ".join(parts)
    return "; ".join(f"{path_str(e['loc'])}: {e['msg']} [{e['type']}]" for e in kept)


# --- v1.0: the 1.x protobuf AgentCard ------------------------------------------------


def judge_v10(card) -> tuple[bool, str, list[str]]:
    from a2a.client.card_resolver import parse_agent_card
    from a2a.utils.errors import InvalidParamsError
    from a2a.utils.proto_utils import validate_proto_required_fields
    from google.protobuf.json_format import MessageToDict, ParseError

    try:
        message = parse_agent_card(copy.deepcopy(card))
    except ParseError as err:
        return False, str(err), []
    notes = diff(card, MessageToDict(message))
    try:
        validate_proto_required_fields(message)
    except InvalidParamsError as err:
        fields = ", ".join(e["field"] for e in (err.data or {}).get("errors", []))
        notes.append(f"validate_proto_required_fields, which card parsing does not call, flags {fields}")
    return True, "", notes


# --- driver -------------------------------------------------------------------------


def verdicts(version: str, sdk: str) -> dict:
    judge = judge_v03 if version == "0.3" else judge_v10
    result = {}
    for path in sorted(CARDS.glob(f"{PREFIX[version]}-*.json")):
        if not NAME.match(path.name):
            raise SystemExit(f"{path.name}: name is not <v03|v10>-<valid|invalid>-<short-name>.json")
        card = json.loads(path.read_text(encoding="utf-8"))
        spec_valid = path.name.split("-")[1] == "valid"
        rule = SPEC_RULES.get(path.stem)
        if not spec_valid and rule is None:
            raise SystemExit(f"{path.name}: add the specification rule it breaks to SPEC_RULES")
        if spec_valid and rule is not None:
            raise SystemExit(f"{path.name}: a valid card has an entry in SPEC_RULES")
        ok, error, notes = judge(card)
        if ok and not spec_valid:
            why = f"sdk lenient: {rule}; accepted" + (f": {'; '.join(notes)}" if notes else "")
        elif ok:
            # Defaults filled in are expected; anything else (a member
            # ignored or changed, a REQUIRED field flagged) is worth a look.
            odd = [n for n in notes if " filled in as " not in n]
            why = f"sdk note: {'; '.join(odd)}" if odd else ""
        elif spec_valid:
            why = f"sdk strict: {error}"
        else:
            why = error
        result[path.name] = {"version": version, "sdk_valid": ok, "sdk": sdk, "why": why}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", choices=sorted(PINS), help="which cards to check (default: the installed SDK's line)")
    parser.add_argument("--write", action="store_true", help="regenerate this version's entries in expected.json")
    parser.add_argument("--verdict-only", action="store_true", help="compare sdk_valid alone")
    args = parser.parse_args()

    try:
        sdk = installed_sdk()
    except metadata.PackageNotFoundError:
        print("a2a-sdk is not installed here; run inside a virtualenv with " + " or ".join(f"a2a-sdk=={p}" for p in PINS.values()), file=sys.stderr)
        return 2
    line = "0.3" if sdk.startswith("0.") else "1.0"
    version = args.version or line
    if line != version:
        print(f"--version {version} needs a2a-sdk=={PINS[version]}; this environment has {sdk}", file=sys.stderr)
        return 2
    if sdk != PINS[version] and args.write:
        print(f"refusing to write with a2a-sdk {sdk}: the pin is {PINS[version]} (update PINS first)", file=sys.stderr)
        return 2

    current = verdicts(version, sdk)
    expected = json.loads(EXPECTED.read_text(encoding="utf-8")) if EXPECTED.exists() else {}
    mine = {k: v for k, v in expected.items() if v.get("version") == version}

    if args.write:
        kept = {k: v for k, v in expected.items() if v.get("version") != version}
        kept.update(current)
        EXPECTED.write_text(json.dumps(dict(sorted(kept.items())), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        valid = sum(v["sdk_valid"] for v in current.values())
        print(f"wrote {len(current)} v{version} entries (a2a-sdk {sdk}): {valid} sdk-valid, {len(current) - valid} sdk-invalid")
        return 0

    if sdk != PINS[version]:
        print(f"note: a2a-sdk {sdk} is installed, expected.json was made with {PINS[version]}", file=sys.stderr)
    failed = 0
    for name in sorted(set(current) | set(mine)):
        have, want = current.get(name), mine.get(name)
        if want is None:
            print(f"DIFF {name}: no entry in expected.json (run with --write)")
        elif have is None:
            print(f"DIFF {name}: in expected.json but there is no such card")
        else:
            keys = ["sdk_valid"] if args.verdict_only else sorted(set(have) | set(want))
            changed = [k for k in keys if have.get(k) != want.get(k)]
            if not changed:
                continue
            print(f"DIFF {name}:")
            for k in changed:
                print(f"  {k}: expected {json.dumps(want.get(k))}, got {json.dumps(have.get(k))}")
        failed += 1
    print(f"a2a cards v{version} (a2a-sdk {sdk}):")
    print(f"{len(current) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
