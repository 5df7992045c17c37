"""Drives a running Agentry with Microsoft's msgraph-beta-sdk, unchanged but
for the base URL and the token. Usage: python_smoke.py BASE_URL TOKEN"""
import asyncio
import sys

from azure.core.credentials import AccessToken
from kiota_abstractions.api_error import APIError
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph_beta import GraphRequestAdapter, GraphServiceClient
from msgraph_beta.generated.models.agent_card_manifest import AgentCardManifest
from msgraph_beta.generated.models.agent_collection import AgentCollection
from msgraph_beta.generated.models.agent_instance import AgentInstance
from msgraph_beta.generated.models.agent_skill import AgentSkill

BASE, TOKEN = sys.argv[1], sys.argv[2]
ID = "SDK Platform Agent: 001"


class StaticToken:
    def __init__(self, token):
        self.token = token

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self.token, 2**31 - 1)


async def main():
    auth = AzureIdentityAuthenticationProvider(StaticToken(TOKEN), allowed_hosts=["127.0.0.1", "localhost"])
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = BASE
    reg = GraphServiceClient(request_adapter=adapter).agent_registry
    instance = reg.agent_instances.by_agent_instance_id(ID)

    created = await reg.agent_instances.post(AgentInstance(
        id=ID, display_name="SDK agent", owner_ids=["o1"],
        agent_card_manifest=AgentCardManifest(display_name="Card", skills=[AgentSkill(id="s1", tags=["security"])])))
    assert created.id == ID and created.created_date_time is not None

    got = await instance.get()
    assert got.owner_ids == ["o1"], got
    manifest = await instance.agent_card_manifest.get()
    assert manifest.display_name == "Card" and manifest.skills[0].tags == ["security"], manifest

    await instance.patch(AgentInstance(display_name="Renamed"))
    listed = await reg.agent_instances.get()
    assert [i.display_name for i in listed.value] == ["Renamed"], listed

    collection = await reg.agent_collections.post(AgentCollection(display_name="Team", owner_ids=["o1"]))
    members = reg.agent_collections.by_agent_collection_id(collection.id).members
    await members.post(AgentInstance(id=ID))
    assert [m.id for m in (await members.get()).value] == [ID]
    assert [c.display_name for c in (await instance.collections.get()).value] == ["Team"]

    patched = await reg.agent_card_manifests.by_agent_card_manifest_id(manifest.id).patch(AgentCardManifest(version="2.0.0"))
    assert patched.version == "2.0.0"
    assert await reg.agent_instances.count.get() == 1

    await members.by_agent_instance_id(ID).delete()
    await instance.delete()
    try:
        await instance.get()
        raise AssertionError("the instance should be gone")
    except APIError as e:
        assert e.response_status_code == 404 and e.error.code == "AgentNotFound", e
    print("msgraph-beta-sdk: every call answered as expected")


asyncio.run(main())
