"""Drives a running Agentry through every /beta/agentRegistry operation with
Microsoft's msgraph-beta-sdk, unchanged but for the base URL and the token,
plus msgraph-core's page iterator and batch builder, and checks what the SDK
deserialises: types, nested models, query options, paging, batching and the
ODataError of each failure. Usage: graph_session.py ORIGIN TOKEN"""
import asyncio
import base64
import datetime
import json
import sys
import time

from azure.core.credentials import AccessToken
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.serialization import ParseNodeFactoryRegistry
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from kiota_serialization_json.json_serialization_writer import JsonSerializationWriter
from msgraph_beta import GraphRequestAdapter, GraphServiceClient
from msgraph_beta.generated.models.agent_capabilities import AgentCapabilities
from msgraph_beta.generated.models.agent_card_manifest import AgentCardManifest
from msgraph_beta.generated.models.agent_card_signature import AgentCardSignature
from msgraph_beta.generated.models.agent_collection import AgentCollection
from msgraph_beta.generated.models.agent_collection_collection_response import AgentCollectionCollectionResponse
from msgraph_beta.generated.models.agent_extension import AgentExtension
from msgraph_beta.generated.models.agent_extension_params import AgentExtensionParams
from msgraph_beta.generated.models.agent_instance import AgentInstance
from msgraph_beta.generated.models.agent_instance_collection_response import AgentInstanceCollectionResponse
from msgraph_beta.generated.models.agent_interface import AgentInterface
from msgraph_beta.generated.models.agent_provider import AgentProvider
from msgraph_beta.generated.models.agent_registry import AgentRegistry
from msgraph_beta.generated.models.agent_skill import AgentSkill
from msgraph_beta.generated.models.jws_header import JwsHeader
from msgraph_beta.generated.models.o_data_errors.o_data_error import ODataError
from msgraph_beta.generated.models.security_requirement import SecurityRequirement
from msgraph_beta.generated.models.security_schemes import SecuritySchemes
from msgraph_core.requests.batch_request_builder import BatchRequestBuilder
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem
from msgraph_core.tasks.page_iterator import PageIterator

ORIGIN, TOKEN = sys.argv[1], sys.argv[2]
AGENT = "SDK Platform Agent: 001"  # a space and a colon, as in Graph's examples
TEAM = "SDK Workspace: 001"
GLOBAL = "00000000-0000-0000-0000-000000000001"
QUARANTINED = "00000000-0000-0000-0000-000000000002"
UTC = datetime.timezone.utc


class StaticToken:
    def __init__(self, token):
        self.token = token

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self.token, 2**31 - 1)


def options(builder=None, headers=None, **query):
    """A RequestConfiguration with headers and the builder's own GET query parameter class."""
    config = RequestConfiguration()
    if query:
        parameters = getattr(type(builder), type(builder).__name__ + "GetQueryParameters")
        config.query_parameters = parameters(**query)
    for name, value in (headers or {}).items():
        config.headers.add(name, value)
    return config


def representation():
    """Asks a PATCH for the entity back (Prefer: return=representation)."""
    return options(headers={"Prefer": "return=representation"})


async def expect_error(call, status, code):
    """Awaits a call that must fail with the SDK's ODataError of that status and code."""
    try:
        await call
    except ODataError as e:
        assert e.response_status_code == status, (status, e.response_status_code, e.error.code, e.error.message)
        assert e.error.code == code, (code, e.error.code, e.error.message)
        assert e.error.message, e.error
        inner = e.error.inner_error
        assert inner.request_id and isinstance(inner.date, datetime.datetime), inner
        return e.error
    raise AssertionError(f"expected {status} {code}")


def recent(stamp):
    """A server timestamp: an aware UTC datetime from the last few minutes."""
    assert isinstance(stamp, datetime.datetime) and stamp.utcoffset() == datetime.timedelta(0), stamp
    assert abs(datetime.datetime.now(UTC) - stamp) < datetime.timedelta(minutes=5), stamp
    return stamp


def full_card():
    """A manifest using every property and complex type of agentCardManifest."""
    return AgentCardManifest(
        id="SDK Card: 001",
        display_name="SDK Card",
        description="Finds and fixes conditional access gaps",
        owner_ids=["0ef68a76-e247-41dd-947b-41282760a2ac"],
        originating_store="Copilot Studio",
        icon_url="https://sdk.example.com/icon.png",
        documentation_url="https://sdk.example.com/docs",
        protocol_version="0.3.0",
        version="1.0.0",
        provider=AgentProvider(organization="Contoso", url="https://contoso.example.com"),
        capabilities=AgentCapabilities(streaming=True, push_notifications=False, state_transition_history=True,
                                       extensions=[AgentExtension(
                                           uri="https://contoso.example.com/ext/secure", required=False,
                                           params=AgentExtensionParams(additional_data={
                                               "useHttps": True, "info": {"version": "1.0.0"}}))]),
        security_schemes=SecuritySchemes(additional_data={"entra": {
            "@odata.type": "#microsoft.graph.oAuth2SecurityScheme", "type": "oauth2",
            "flows": {"clientCredentials": {"tokenUrl": "https://login.microsoftonline.com",
                                            "scopes": {"agent.run": "run the agent"}}}}}),
        security=[SecurityRequirement(additional_data={"entra": ["agent.run"]})],
        default_input_modes=["application/json"],
        default_output_modes=["application/json", "text/html"],
        supports_authenticated_extended_card=True,
        skills=[AgentSkill(id="threat-detection", display_name="Threat Detection", description="Detect threats",
                           tags=["security", "threat"], examples=["Check this log"],
                           input_modes=["text/plain"], output_modes=["application/json"],
                           security=[SecurityRequirement(additional_data={"entra": []})])],
    )


def as_json(model):
    """A model as the SDK serialises it (unset properties left out)."""
    writer = JsonSerializationWriter()
    writer.write_object_value(None, model)
    return json.loads(writer.get_serialized_content())


def check_card(card, **changed):
    """The manifest of full_card() (with the JSON values changed since), as the SDK
    deserialised it: every value sent, each in its model."""
    assert isinstance(card, AgentCardManifest), card
    sent, got = {**as_json(full_card()), **changed}, as_json(card)
    assert {name: got.get(name) for name in sent} == sent, (sent, got)
    assert isinstance(card.provider, AgentProvider) and isinstance(card.capabilities, AgentCapabilities), card
    extension = card.capabilities.extensions[0]
    assert isinstance(extension, AgentExtension) and isinstance(extension.params, AgentExtensionParams), extension
    assert extension.params.additional_data == {"useHttps": True, "info": {"version": "1.0.0"}}, extension.params
    assert isinstance(card.security_schemes, SecuritySchemes), card.security_schemes
    assert isinstance(card.security[0], SecurityRequirement), card.security
    skill = card.skills[0]
    assert isinstance(skill, AgentSkill) and isinstance(skill.security[0], SecurityRequirement), skill
    assert skill.tags == ["security", "threat"], skill
    recent(card.created_date_time)
    assert card.created_by, card


async def registry(reg):
    """GET and PATCH the keyless agentRegistry singleton."""
    got = await reg.get()
    assert isinstance(got, AgentRegistry), got
    assert got.agent_instances is None and got.agent_collections is None, got
    assert await reg.patch(AgentRegistry()) is None, "204 without a body"


async def instances(reg):
    """Create, read, query, update and fail on agentInstances."""
    body = AgentInstance(
        id=AGENT, display_name="SDK agent", owner_ids=["o1", "o2"], managed_by="719cc904-9700-4e08-9941-fd826cc84c60",
        originating_store="Microsoft Security Copilot", source_agent_id="00222",
        agent_identity_blueprint_id="b1", agent_identity_id="i1", agent_user_id="u1",
        url="https://sdk.example.com/a2a", preferred_transport="JSONRPC",
        additional_interfaces=[AgentInterface(url="https://sdk.example.com/a2a", transport="JSONRPC"),
                               AgentInterface(url="https://sdk.example.com/grpc", transport="GRPC")],
        signatures=[AgentCardSignature(protected="eyJhbGciOiJFUzI1NiJ9", signature="c2ln",
                                       header=JwsHeader(additional_data={"kidHint": "key-1"}))],
        created_by="someone else", created_date_time=datetime.datetime(2001, 1, 1, tzinfo=UTC),
        agent_card_manifest=full_card(),
    )
    created = await reg.agent_instances.post(body)
    assert isinstance(created, AgentInstance) and created.id == AGENT, created
    assert created.owner_ids == ["o1", "o2"] and created.source_agent_id == "00222", created
    assert created.created_by and created.created_by != "someone else", "createdBy is the server's"
    assert recent(created.created_date_time) == recent(created.last_modified_date_time), created
    assert [(i.url, i.transport) for i in created.additional_interfaces] == [
        ("https://sdk.example.com/a2a", "JSONRPC"), ("https://sdk.example.com/grpc", "GRPC")], created
    assert all(isinstance(i, AgentInterface) for i in created.additional_interfaces)
    signature = created.signatures[0]
    assert isinstance(signature, AgentCardSignature) and isinstance(signature.header, JwsHeader), signature
    assert signature.header.additional_data == {"kidHint": "key-1"}, signature.header
    assert created.agent_card_manifest is None, "a create answers without the deep-inserted manifest"

    item = reg.agent_instances.by_agent_instance_id(AGENT)
    got = await item.get()
    assert got.display_name == "SDK agent" and got.agent_user_id == "u1", got
    assert got.created_date_time == created.created_date_time, got
    selected = await item.get(options(item, select=["id", "displayName", "url"]))
    assert selected.url == body.url and selected.owner_ids is None and selected.created_date_time is None, selected
    expanded = await item.get(options(item, expand=["agentCardManifest"]))
    check_card(expanded.agent_card_manifest)

    assert await item.patch(AgentInstance(display_name="SDK agent renamed")) is None, "204 by default"
    updated = await item.patch(AgentInstance(additional_interfaces=[AgentInterface(url="https://sdk.example.com/json",
                                                                                   transport="HTTP+JSON")]),
                               representation())
    assert updated.display_name == "SDK agent renamed" and len(updated.additional_interfaces) == 1, updated
    assert updated.last_modified_date_time > updated.created_date_time, updated
    await expect_error(item.patch(AgentInstance(url="https://x.example.com"),
                                  options(headers={"If-Match": 'W/"999-0"'})), 412, "resourceModified")

    plain = await reg.agent_instances.post(AgentInstance(display_name="SDK plain agent", owner_ids=["o3"]))
    assert plain.id and plain.id != AGENT and plain.url is None and plain.additional_interfaces == [], plain

    await expect_error(reg.agent_instances.post(AgentInstance(id=AGENT, display_name="Twin", owner_ids=["o1"])),
                       409, "AgentAlreadyExists")
    await expect_error(reg.agent_instances.post(AgentInstance(display_name="No owners")), 400, "ValidationError")
    await expect_error(reg.agent_instances.post(AgentInstance(display_name="Odd", owner_ids=["o"],
                                                              additional_data={"colour": "red"})),
                       400, "ValidationError")
    missing = reg.agent_instances.by_agent_instance_id("SDK missing agent")
    await expect_error(missing.get(), 404, "AgentNotFound")
    await expect_error(missing.patch(AgentInstance(display_name="x")), 404, "AgentNotFound")
    await expect_error(missing.delete(), 404, "AgentNotFound")
    return plain.id


async def instance_queries(reg):
    """$filter, $select, $orderby, $top, $skip, $search, $count and $expand on the instance list and /$count."""
    builder = reg.agent_instances
    listed = await builder.get()
    assert isinstance(listed, AgentInstanceCollectionResponse), listed
    assert sorted(i.display_name for i in listed.value) == ["SDK agent renamed", "SDK plain agent"], listed.value
    assert all(isinstance(i.created_date_time, datetime.datetime) for i in listed.value)

    found = await builder.get(options(builder, filter="agentCardManifest/skills/any(s: s/tags/any(t: t eq 'security'))",
                                      select=["id", "displayName"], count=True))
    assert [i.id for i in found.value] == [AGENT] and found.odata_count == 1, found
    assert found.value[0].owner_ids is None, "$select leaves the rest out"

    ordered = await builder.get(options(builder, orderby=["displayName desc"], top=1, count=True))
    assert [i.display_name for i in ordered.value] == ["SDK plain agent"] and ordered.odata_count == 2, ordered
    assert ordered.odata_next_link and ordered.odata_next_link.startswith(ORIGIN + "/beta/"), ordered.odata_next_link

    with_cards = await builder.get(options(builder, filter="startswith(displayName, 'SDK agent')",
                                           expand=["agentCardManifest"]))
    check_card(with_cards.value[0].agent_card_manifest)

    skipped = await builder.get(options(builder, orderby=["displayName"], skip=1))
    assert [i.display_name for i in skipped.value] == ["SDK plain agent"], skipped.value
    searched = await builder.get(options(builder, {"ConsistencyLevel": "eventual"}, search='"renamed"', count=True))
    assert [i.id for i in searched.value] == [AGENT] and searched.odata_count == 1, searched
    await expect_error(builder.get(options(builder, search='"renamed"')), 400, "Request_UnsupportedQuery")

    assert await builder.count.get() == 2
    count_options = options(builder.count, filter="ownerIds/any(o: o eq 'o3')")
    assert await builder.count.get(count_options) == 1

    error = await expect_error(builder.get(options(builder, filter="colour eq 'red'")), 400, "BadRequest")
    assert "colour" in error.message, error.message
    await expect_error(builder.get(options(builder, top=1000)), 400, "BadRequest")


async def instance_manifest(reg):
    """GET, PATCH and DELETE /agentInstances/{id}/agentCardManifest, and deep update and bind."""
    item = reg.agent_instances.by_agent_instance_id(AGENT)
    card = await item.agent_card_manifest.get()
    check_card(card)
    selected = await item.agent_card_manifest.get(options(item.agent_card_manifest, select=["id", "version"]))
    assert selected.version == "1.0.0" and selected.skills is None, selected

    patched = await item.agent_card_manifest.patch(AgentCardManifest(version="1.1.0",
                                                                     default_input_modes=["text/plain"]))
    assert isinstance(patched, AgentCardManifest) and patched.version == "1.1.0", patched
    assert patched.default_input_modes == ["text/plain"] and patched.skills[0].id == "threat-detection", patched
    assert patched.last_modified_date_time > patched.created_date_time, patched

    # A nested manifest on an instance PATCH updates the linked one.
    await item.patch(AgentInstance(agent_card_manifest=AgentCardManifest(description="Updated through the instance")))
    assert (await item.agent_card_manifest.get()).description == "Updated through the instance"

    assert await item.agent_card_manifest.delete() is None, "204: unlinked"
    await expect_error(item.agent_card_manifest.get(), 404, "AgentCardNotFound")
    await expect_error(item.agent_card_manifest.patch(AgentCardManifest(version="9")), 404, "AgentCardNotFound")
    kept = await reg.agent_card_manifests.by_agent_card_manifest_id(card.id).get()
    assert kept.version == "1.1.0", "unlinking keeps the manifest"

    bind = {"agentCardManifest@odata.bind": f"{ORIGIN}/beta/agentRegistry/agentCardManifests('{card.id}')"}
    await item.patch(AgentInstance(additional_data=bind))
    assert (await item.agent_card_manifest.get()).id == card.id, "bound again"
    await expect_error(item.patch(AgentInstance(additional_data={
        "agentCardManifest@odata.bind": f"{ORIGIN}/beta/agentRegistry/agentCardManifests('SDK no card')"})),
        404, "AgentCardNotFound")
    return card.id


async def manifests(reg, card_id):
    """List, count, query, get and PATCH agentCardManifests."""
    builder = reg.agent_card_manifests
    second = AgentCardManifest(display_name="Another SDK card", version="0.1.0",
                               skills=[AgentSkill(id="chat", display_name="Chat", tags=["chat"])])
    other = await reg.agent_instances.post(AgentInstance(display_name="SDK second agent", owner_ids=["o4"],
                                                         agent_card_manifest=second))
    other_card = await reg.agent_instances.by_agent_instance_id(other.id).agent_card_manifest.get()

    listed = await builder.get()
    assert sorted(m.display_name for m in listed.value) == ["Another SDK card", "SDK Card"], listed.value
    assert all(isinstance(m.skills[0], AgentSkill) for m in listed.value)
    assert await builder.count.get() == 2
    assert await builder.count.get(options(builder.count, filter="version eq '0.1.0'")) == 1

    found = await builder.get(options(builder, filter="skills/any(s: s/tags/any(t: t eq 'chat'))",
                                      select=["id", "displayName", "skills"], count=True))
    assert [m.id for m in found.value] == [other_card.id] and found.odata_count == 1, found
    assert found.value[0].version is None and found.value[0].skills[0].display_name == "Chat", found.value[0]
    ordered = await builder.get(options(builder, orderby=["version desc"], top=1))
    assert [m.version for m in ordered.value] == ["1.1.0"] and ordered.odata_next_link, ordered

    item = builder.by_agent_card_manifest_id(card_id)
    check_card(await item.get(), version="1.1.0", defaultInputModes=["text/plain"],
               description="Updated through the instance")
    selected = await item.get(options(item, select=["displayName"]))
    assert selected.display_name == "SDK Card" and selected.version is None, selected

    schemes = SecuritySchemes(additional_data={"oidc": {
        "@odata.type": "#microsoft.graph.openIdConnectSecurityScheme", "type": "openIdConnect",
        "openIdConnectUrl": "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration"}})
    patched = await item.patch(AgentCardManifest(security_schemes=schemes, security=[
        SecurityRequirement(additional_data={"oidc": []})], version="2.0.0"))
    assert patched.version == "2.0.0" and patched.description == "Updated through the instance", patched
    assert patched.security_schemes.additional_data == schemes.additional_data, "replaced whole, kept as sent"
    assert [s.additional_data for s in patched.security] == [{"oidc": []}], patched.security
    assert (await item.get()).security_schemes.additional_data == schemes.additional_data

    await expect_error(item.patch(AgentCardManifest(additional_data={"colour": "red"})), 400, "ValidationError")
    missing = builder.by_agent_card_manifest_id("SDK no card")
    await expect_error(missing.get(), 404, "AgentCardNotFound")
    await expect_error(missing.patch(AgentCardManifest(version="1")), 404, "AgentCardNotFound")
    return other.id


async def collections(reg):
    """Create, list, query, get, PATCH and DELETE agentCollections, reserved ones included."""
    builder = reg.agent_collections
    listed = await builder.get()
    assert isinstance(listed, AgentCollectionCollectionResponse), listed
    assert {c.id: c.display_name for c in listed.value} == {GLOBAL: "Global", QUARANTINED: "Quarantined"}, listed.value

    team = await builder.post(AgentCollection(id=TEAM, display_name="SDK Team", owner_ids=["o1"],
                                              description="Agents for the SDK session", originating_store="SDK"))
    assert isinstance(team, AgentCollection) and team.id == TEAM and team.owner_ids == ["o1"], team
    recent(team.created_date_time)
    spare = await builder.post(AgentCollection(display_name="SDK Spare", owner_ids=["o2"]))
    assert spare.id and spare.description is None, spare

    await expect_error(builder.post(AgentCollection(id=TEAM, display_name="Twin", owner_ids=["o1"])),
                       409, "AgentCollectionAlreadyExists")
    await expect_error(builder.post(AgentCollection(display_name=" global ", owner_ids=["o1"])), 409, "Conflict")
    await expect_error(builder.post(AgentCollection(owner_ids=["o1"])), 400, "ValidationError")

    assert await builder.count.get() == 4
    assert await builder.count.get(options(builder.count, filter="startswith(displayName, 'SDK')")) == 2
    found = await builder.get(options(builder, filter="originatingStore eq 'SDK'", select=["id", "displayName"],
                                      count=True))
    assert [c.id for c in found.value] == [TEAM] and found.odata_count == 1 and found.value[0].owner_ids is None, found
    ordered = await builder.get(options(builder, orderby=["displayName desc"], top=2))
    assert [c.display_name for c in ordered.value] == ["SDK Team", "SDK Spare"] and ordered.odata_next_link, ordered

    item = builder.by_agent_collection_id(TEAM)
    got = await item.get()
    assert got.description == "Agents for the SDK session" and got.created_date_time == team.created_date_time, got
    assert (await builder.by_agent_collection_id(GLOBAL).get()).display_name == "Global"
    assert await item.patch(AgentCollection(description="Renamed purpose")) is None, "204"
    updated = await item.patch(AgentCollection(owner_ids=["o1", "o9"]), representation())
    assert updated.owner_ids == ["o1", "o9"] and updated.description == "Renamed purpose", updated
    assert updated.last_modified_date_time > updated.created_date_time, updated
    await expect_error(item.patch(AgentCollection(display_name="Quarantined")), 409, "Conflict")

    reserved = builder.by_agent_collection_id(QUARANTINED)
    error = await expect_error(reserved.patch(AgentCollection(description="x")), 403, "Forbidden")
    assert error.inner_error.additional_data.get("code") == "collectionImmutable", error.inner_error.additional_data
    await expect_error(reserved.delete(), 403, "Forbidden")

    assert await builder.by_agent_collection_id(spare.id).delete() is None
    missing = builder.by_agent_collection_id(spare.id)
    await expect_error(missing.get(), 404, "AgentCollectionNotFound")
    await expect_error(missing.patch(AgentCollection(description="x")), 404, "AgentCollectionNotFound")
    await expect_error(missing.delete(), 404, "AgentCollectionNotFound")


async def members(reg, plain_id):
    """Add, list, count, query, get and remove collection members."""
    team = reg.agent_collections.by_agent_collection_id(TEAM)
    added = await team.members.post(AgentInstance(id=AGENT))
    assert isinstance(added, AgentInstance) and added.id == AGENT and added.display_name == "SDK agent renamed", added
    recent(added.created_date_time)
    await team.members.post(AgentInstance(id=plain_id))
    await reg.agent_collections.by_agent_collection_id(GLOBAL).members.post(AgentInstance(id=AGENT))
    await expect_error(team.members.post(AgentInstance(id=AGENT)), 400, "BadRequest")
    await expect_error(team.members.post(AgentInstance(id="SDK missing agent")), 404, "AgentNotFound")

    listed = await team.members.get()
    assert sorted(m.id for m in listed.value) == sorted([AGENT, plain_id]), listed.value
    assert all(isinstance(m, AgentInstance) and isinstance(m.owner_ids, list) for m in listed.value), listed.value
    found = await team.members.get(options(team.members, filter="ownerIds/any(o: o eq 'o3')", select=["id"],
                                           count=True))
    assert [m.id for m in found.value] == [plain_id] and found.odata_count == 1 and found.value[0].display_name is None
    ordered = await team.members.get(options(team.members, orderby=["displayName desc"], top=1))
    assert [m.id for m in ordered.value] == [plain_id] and ordered.odata_next_link, ordered
    assert await team.members.count.get() == 2
    assert await team.members.count.get(options(team.members.count, filter="displayName eq 'sdk plain agent'")) == 1

    expanded = await team.get(options(team, expand=["members($select=id,displayName)"]))
    assert sorted(m.id for m in expanded.members) == sorted([AGENT, plain_id]), expanded.members
    assert all(m.display_name and m.owner_ids is None for m in expanded.members), expanded.members

    member = team.members.by_agent_instance_id(AGENT)
    got = await member.get()
    assert isinstance(got, AgentInstance) and got.additional_interfaces[0].transport == "HTTP+JSON", got
    selected = await member.get(options(member, select=["id", "url"]))
    assert selected.url == "https://sdk.example.com/a2a" and selected.display_name is None, selected
    stranger = reg.agent_collections.by_agent_collection_id(GLOBAL).members.by_agent_instance_id(plain_id)
    await expect_error(stranger.get(), 404, "Request_ResourceNotFound")

    assert await team.members.by_agent_instance_id(plain_id).delete() is None
    await expect_error(team.members.by_agent_instance_id(plain_id).get(), 404, "Request_ResourceNotFound")
    await expect_error(team.members.by_agent_instance_id(plain_id).delete(), 404, "Request_ResourceNotFound")
    assert await team.members.count.get() == 1


async def instance_collections(reg, plain_id):
    """An instance's collections: list, count, query and get."""
    collections = reg.agent_instances.by_agent_instance_id(AGENT).collections
    listed = await collections.get()
    assert isinstance(listed, AgentCollectionCollectionResponse), listed
    assert sorted(c.display_name for c in listed.value) == ["Global", "SDK Team"], listed.value
    assert all(isinstance(c.created_date_time, datetime.datetime) for c in listed.value if c.id == TEAM)
    ordered = await collections.get(options(collections, orderby=["displayName desc"], select=["id", "displayName"],
                                            top=1, count=True))
    assert [c.id for c in ordered.value] == [TEAM] and ordered.odata_count == 2 and ordered.odata_next_link, ordered
    found = await collections.get(options(collections, filter=f"id eq '{GLOBAL}'", expand=["members"]))
    assert [c.id for c in found.value] == [GLOBAL] and [m.id for m in found.value[0].members] == [AGENT], found.value
    assert await collections.count.get() == 2
    assert await collections.count.get(options(collections.count, filter="displayName eq 'Global'")) == 1

    instance = reg.agent_instances.by_agent_instance_id(AGENT)
    expanded = await instance.get(options(instance, expand=["collections($select=displayName)"]))
    assert sorted(c.display_name for c in expanded.collections) == ["Global", "SDK Team"], expanded.collections
    assert all(isinstance(c, AgentCollection) and c.owner_ids is None for c in expanded.collections)

    got = await collections.by_agent_collection_id(TEAM).get()
    assert isinstance(got, AgentCollection) and got.owner_ids == ["o1", "o9"], got
    item = collections.by_agent_collection_id(TEAM)
    assert (await item.get(options(item, select=["description"]))).description == "Renamed purpose"
    elsewhere = reg.agent_instances.by_agent_instance_id(plain_id).collections
    assert (await elsewhere.get()).value == [] and await elsewhere.count.get() == 0
    await expect_error(elsewhere.by_agent_collection_id(TEAM).get(), 404, "Request_ResourceNotFound")
    await expect_error(reg.agent_instances.by_agent_instance_id("SDK missing agent").collections.get(),
                       404, "AgentNotFound")


async def paging(reg, adapter):
    """msgraph-core's PageIterator follows @odata.nextLink through $top=2 pages."""
    ids = [f"SDK Page Agent: {n:02}" for n in range(1, 8)]
    for n, key in enumerate(ids):
        await reg.agent_instances.post(AgentInstance(id=key, display_name=f"Page {7 - n}", owner_ids=["pager"]))
    builder = reg.agent_instances
    first = await builder.get(options(builder, filter="ownerIds/any(o: o eq 'pager')", orderby=["displayName"],
                                      select=["id", "displayName"], top=2, count=True))
    assert len(first.value) == 2 and first.odata_count == 7 and first.odata_next_link, first
    seen = []

    def collect(instance):
        seen.append(instance)
        return True  # keep iterating

    await PageIterator(first, adapter, error_mapping={"XXX": ODataError}).iterate(collect)
    assert [i.display_name for i in seen] == [f"Page {n}" for n in range(1, 8)], [i.display_name for i in seen]
    assert sorted(i.id for i in seen) == ids and all(isinstance(i, AgentInstance) for i in seen), seen
    assert all(i.owner_ids is None for i in seen), "every next link keeps $select"
    for key in ids:
        await reg.agent_instances.by_agent_instance_id(key).delete()


async def batching(reg, adapter, card_id):
    """Reads, an update and a failing read in one $batch built with msgraph-core."""
    team = reg.agent_collections.by_agent_collection_id(TEAM)
    instance = BatchRequestItem(reg.agent_instances.by_agent_instance_id(AGENT).to_get_request_information())
    card = BatchRequestItem(reg.agent_card_manifests.by_agent_card_manifest_id(card_id).to_get_request_information(),
                            depends_on=[instance])
    members = BatchRequestItem(team.members.to_get_request_information())
    update = BatchRequestItem(team.to_patch_request_information(AgentCollection(description="Batched purpose")))
    missing = BatchRequestItem(
        reg.agent_instances.by_agent_instance_id("SDK missing agent").to_get_request_information())
    # A text answer (a /$count) comes back base64-encoded, as Graph sends it.
    counted = BatchRequestItem(reg.agent_instances.count.to_get_request_information())
    content = BatchRequestContent()
    for item in (instance, card, members, update, missing, counted):
        content.add_request(item.id, item)
    builder = BatchRequestBuilder(adapter, {"XXX": ODataError})
    result = await builder.post(content)
    statuses = result.get_response_status_codes()
    assert statuses == {instance.id: 200, card.id: 200, members.id: 200, update.id: 204, missing.id: 404,
                        counted.id: 200}, statuses
    headers = result.get_response_by_id(instance.id).headers
    assert headers["etag"].startswith('W/"') and headers["content-type"].startswith("application/json"), headers

    # msgraph-core 1.5.2 reads each item's body as base64 bytes, which
    # kiota-serialization-json 1.16 turns into None for a JSON object body
    # (microsoft/kiota-python#737), so the bodies are read from the same batch
    # sent again through the SDK's adapter, and deserialised with its models.
    raw = await adapter.send_primitive_async(await builder.to_post_request_information(content), "bytes",
                                             {"XXX": ODataError})
    bodies = {answer["id"]: answer.get("body") for answer in json.loads(raw)["responses"]}

    def body(item, model):
        return ParseNodeFactoryRegistry().get_root_parse_node(
            "application/json", json.dumps(bodies[item.id]).encode()).get_object_value(model)

    got = body(instance, AgentInstance)
    assert got.id == AGENT and isinstance(got.created_date_time, datetime.datetime), got
    assert isinstance(got.additional_interfaces[0], AgentInterface), got
    manifest = body(card, AgentCardManifest)
    assert manifest.id == card_id and manifest.version == "2.0.0", manifest
    assert isinstance(manifest.skills[0], AgentSkill), manifest.skills
    assert list(manifest.security_schemes.additional_data) == ["oidc"], manifest.security_schemes
    assert [m.id for m in body(members, AgentInstanceCollectionResponse).value] == [AGENT]
    assert bodies[update.id] is None and (await team.get()).description == "Batched purpose"
    error = body(missing, ODataError).error
    assert error.code == "AgentNotFound" and error.message and error.inner_error.request_id, error
    assert base64.b64decode(bodies[counted.id]).decode().isdigit(), bodies[counted.id]


async def teardown(reg, card_id, other_id, plain_id):
    """Deleting instances drops their memberships and keeps their manifests."""
    for key in (AGENT, other_id, plain_id):
        assert await reg.agent_instances.by_agent_instance_id(key).delete() is None
    await expect_error(reg.agent_instances.by_agent_instance_id(AGENT).get(), 404, "AgentNotFound")
    team = reg.agent_collections.by_agent_collection_id(TEAM)
    assert (await team.members.get()).value == [] and await team.members.count.get() == 0
    assert await reg.agent_collections.by_agent_collection_id(GLOBAL).members.count.get() == 0
    assert (await reg.agent_card_manifests.by_agent_card_manifest_id(card_id).get()).id == card_id
    assert await reg.agent_instances.count.get() == 0
    assert await team.delete() is None


async def delta(reg):
    """A delta query through the SDK's with_url: a first round, then the changes since."""
    instances = reg.agent_instances

    async def follow(url):
        seen = []
        while True:
            page = await instances.with_url(url).get()
            seen.extend(page.value)
            links = page.additional_data
            if page.odata_next_link:
                url = page.odata_next_link
            else:
                return seen, links["@odata.deltaLink"]

    first, link = await follow(ORIGIN + "/beta/agentRegistry/agentInstances/delta?$select=id,displayName")
    assert all(isinstance(i, AgentInstance) for i in first), first
    created = await instances.post(AgentInstance(id="SDK delta agent", display_name="Delta", owner_ids=["o1"]))
    await instances.by_agent_instance_id(created.id).delete()
    changes, _ = await follow(link)
    assert [(c.id, c.additional_data.get("@removed")) for c in changes] == [
        ("SDK delta agent", {"reason": "deleted"})], changes


async def audit_log(client):
    """The session's own writes, read back from /auditLogs/directoryAudits."""
    from msgraph_beta.generated.audit_logs.directory_audits.directory_audits_request_builder import (
        DirectoryAuditsRequestBuilder)
    from msgraph_beta.generated.models.operation_result import OperationResult
    audits = client.audit_logs.directory_audits
    query = DirectoryAuditsRequestBuilder.DirectoryAuditsRequestBuilderGetQueryParameters(
        filter=f"targetResources/any(t:t/id eq '{AGENT}')", top=50)
    listed = (await audits.get(RequestConfiguration(query_parameters=query))).value
    activities = [a.activity_display_name for a in listed]
    assert activities[-1] == "Add agent instance" and "Delete agent instance" in activities, activities
    newest = listed[0]
    assert isinstance(newest.activity_date_time, datetime.datetime), newest
    assert newest.result == OperationResult.Success and newest.logged_by_service == "Agentry", newest
    assert newest.initiated_by.user.id and newest.target_resources[0].id == AGENT, newest
    changed = [p for a in listed if a.activity_display_name == "Update agent instance"
               for p in a.target_resources[0].modified_properties]
    assert "displayName" in [p.display_name for p in changed], changed
    assert all(isinstance(p.new_value, str) or p.new_value is None for p in changed), changed
    one = await audits.by_directory_audit_id(newest.id).get()
    assert one.id == newest.id and one.category == "AgentRegistry", one
    assert await audits.count.get() >= len(listed)
    await expect_error(audits.by_directory_audit_id("no-such-record").get(), 404, "NotFound")


async def subscriptions(client):
    """Change notifications through the SDK: the handshake, the session's writes notified to a
    receiver on loopback, renewal, listing, deletion, and a receiver off the allow-list."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlparse
    from msgraph_beta.generated.models.subscription import Subscription
    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            token = parse_qs(urlparse(self.path).query).get("validationToken")
            answer = token[0].encode() if token else b""
            if not token:
                received.extend(json.loads(body)["value"])
            self.send_response(200 if token else 202)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{hook.server_port}/hook"
    expiry = datetime.datetime.now(UTC) + datetime.timedelta(hours=1)
    sub = await client.subscriptions.post(Subscription(
        change_type="created,deleted", notification_url=url, resource="agentRegistry/agentInstances",
        expiration_date_time=expiry, client_state="sdk-state"))
    assert sub.id and sub.client_state == "sdk-state" and sub.resource == "agentRegistry/agentInstances", sub
    assert isinstance(sub.expiration_date_time, datetime.datetime), sub
    assert sub.id in [s.id for s in (await client.subscriptions.get()).value]
    instances = client.agent_registry.agent_instances
    await instances.post(AgentInstance(id="SDK notified agent", display_name="Notified", owner_ids=["o1"]))
    await instances.by_agent_instance_id("SDK notified agent").delete()
    for _ in range(200):
        if len(received) >= 2:
            break
        await asyncio.sleep(0.05)
    assert [(n["changeType"], n["resourceData"]["id"], n["clientState"]) for n in received] == [
        ("created", "SDK notified agent", "sdk-state"), ("deleted", "SDK notified agent", "sdk-state")], received
    one = client.subscriptions.by_subscription_id(sub.id)
    renewed = await one.patch(Subscription(expiration_date_time=expiry + datetime.timedelta(hours=1)))
    assert renewed.expiration_date_time > sub.expiration_date_time, renewed
    assert (await one.get()).expiration_date_time == renewed.expiration_date_time
    await one.reauthorize.post()
    await one.delete()
    await expect_error(one.get(), 404, "ResourceNotFound")
    await expect_error(client.subscriptions.post(Subscription(
        change_type="created", notification_url="http://10.0.0.1/hook", resource="agentRegistry/agentInstances",
        expiration_date_time=expiry)), 400, "InvalidRequest")
    hook.shutdown()


async def main():
    started = time.monotonic()
    auth = AzureIdentityAuthenticationProvider(StaticToken(TOKEN), allowed_hosts=["127.0.0.1", "localhost"])
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = ORIGIN + "/beta"
    client = GraphServiceClient(request_adapter=adapter)
    reg = client.agent_registry
    await registry(reg)
    plain_id = await instances(reg)
    await instance_queries(reg)
    card_id = await instance_manifest(reg)
    other_id = await manifests(reg, card_id)
    await collections(reg)
    await members(reg, plain_id)
    await instance_collections(reg, plain_id)
    await paging(reg, adapter)
    await batching(reg, adapter, card_id)
    await teardown(reg, card_id, other_id, plain_id)
    await delta(reg)
    await audit_log(client)
    await subscriptions(client)
    print(f"msgraph-beta-sdk: every /agentRegistry, audit log and subscription operation answered as expected ({time.monotonic() - started:.1f}s)")


asyncio.run(main())
