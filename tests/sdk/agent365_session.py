"""Drives a running Agentry, started with examples/seed.json, through the
Agent 365 surfaces with Microsoft's SDKs, unchanged but for the base URL and
the token: microsoft-agents-m365copilot-beta for every agent registration and
package operation, microsoft-agents-m365copilot for the v1.0 package list and
get. Usage: agent365_session.py ORIGIN TOKEN"""
import asyncio
import sys

from azure.core.credentials import AccessToken
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from microsoft_agents_m365copilot import AgentsM365CopilotServiceClient
from microsoft_agents_m365copilot.agents_m365_copilot_request_adapter import AgentsM365CopilotRequestAdapter
from microsoft_agents_m365copilot_beta import AgentsM365CopilotBetaServiceClient
from microsoft_agents_m365copilot_beta.agents_m365_copilot_beta_request_adapter import AgentsM365CopilotBetaRequestAdapter
from microsoft_agents_m365copilot_beta.generated.copilot.admin.catalog.packages.packages_request_builder import PackagesRequestBuilder
from microsoft_agents_m365copilot_beta.generated.copilot.agent_registrations.item.agent_registration_item_request_builder import AgentRegistrationItemRequestBuilder
from microsoft_agents_m365copilot_beta.generated.models.a2a_authorization import A2aAuthorization
from microsoft_agents_m365copilot_beta.generated.models.a2a_authorization_type import A2aAuthorizationType
from microsoft_agents_m365copilot_beta.generated.models.access_entity_type import AccessEntityType
from microsoft_agents_m365copilot_beta.generated.models.agent_registration import AgentRegistration
from microsoft_agents_m365copilot_beta.generated.models.copilot_package_detail import CopilotPackageDetail
from microsoft_agents_m365copilot_beta.generated.models.package_access_entity import PackageAccessEntity

ORIGIN, TOKEN = sys.argv[1], sys.argv[2]
TRAVEL = "P_19ae1ab1-56bc-505a-3d42-156df75a4001"
ADDIN = "P_19ae1ab1-56bc-505a-3d42-156df75a4003"


class StaticToken:
    def __init__(self, token):
        self.token = token

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self.token, 2**31 - 1)


def auth():
    return AzureIdentityAuthenticationProvider(StaticToken(TOKEN), allowed_hosts=["127.0.0.1", "localhost"])


async def expect_error(call, status, code=None):
    try:
        await call
    except APIError as e:
        assert e.response_status_code == status, (status, e.response_status_code, e)
        if code is not None:
            assert e.error.code == code, (code, e.error.code)
        return
    raise AssertionError(f"expected {status}")


async def registrations(copilot):
    card = {"name": "Contoso Travel Agent", "version": "1.0.0", "protocolVersion": "0.3.0",
            "url": "https://travel.contoso.example/a2a", "skills": [{"id": "book", "name": "Book", "tags": ["travel"]}]}
    body = AgentRegistration(
        id="550e8400-e29b-41d4-a716-446655440000",
        display_name="Contoso Travel Agent",
        description="Books flights and hotels",
        owner_ids=["11111111-0000-4000-8000-000000000001"],
        created_by="11111111-0000-4000-8000-000000000001",
        source_agent_id="contoso-travel-v1",
        originating_store="ContosoAgentStore",
        a2a_authorization=A2aAuthorization(type=A2aAuthorizationType.OAuthPluginVault, reference_id="vault-1"),
        additional_data={"agentCard": card},
    )
    import datetime
    body.source_created_date_time = datetime.datetime(2025, 2, 15, 10, 0, tzinfo=datetime.timezone.utc)
    body.source_last_modified_date_time = datetime.datetime(2025, 2, 16, 10, 0, tzinfo=datetime.timezone.utc)
    created = await copilot.agent_registrations.post(body)
    assert created.id == body.id and created.display_name == body.display_name, created
    assert created.a2a_authorization.type == A2aAuthorizationType.OAuthPluginVault, created
    assert created.additional_data["agentCard"]["url"] == card["url"], created.additional_data
    assert created.source_created_date_time == body.source_created_date_time, created

    item = copilot.agent_registrations.by_agent_registration_id(body.id)
    query = AgentRegistrationItemRequestBuilder.AgentRegistrationItemRequestBuilderGetQueryParameters(select=["id", "displayName"])
    selected = await item.get(RequestConfiguration(query_parameters=query))
    assert selected.display_name == body.display_name and selected.owner_ids is None, selected

    updated = await item.patch(AgentRegistration(display_name="Contoso Travel Assistant", last_published_by="u2"))
    assert updated is None, "the documented 200 has no body"
    got = await item.get()
    assert got.display_name == "Contoso Travel Assistant" and got.last_published_by == "u2", got

    twin = AgentRegistration(display_name="Twin", created_by="u", owner_ids=["u"], source_agent_id="contoso-travel-v1",
                             source_created_date_time=body.source_created_date_time,
                             source_last_modified_date_time=body.source_last_modified_date_time)
    await expect_error(copilot.agent_registrations.post(twin), 409, "Conflict")
    await expect_error(copilot.agent_registrations.post(AgentRegistration(display_name="No owner")), 400)
    await item.delete()
    await expect_error(item.get(), 404, "AgentRegistrationNotFound")


async def packages_beta(copilot, adapter):
    packages = copilot.admin.catalog.packages
    listed = await packages.get()
    names = sorted(p.display_name for p in listed.value)
    assert names == ["Contoso Travel Agent", "Expense Bot"], names
    query = PackagesRequestBuilder.PackagesRequestBuilderGetQueryParameters(filter="elementTypes/any(t:t eq 'OfficeAddIns')")
    addins = await packages.get(RequestConfiguration(query_parameters=query))
    assert [p.id for p in addins.value] == [ADDIN], addins.value
    assert await packages.count.get() == 2

    item = packages.by_copilot_package_detail_id(TRAVEL)
    detail = await item.get()
    assert detail.active_users == 42 and detail.element_details[0].elements[0].id == "travelAgent", detail
    result = await item.patch(CopilotPackageDetail(allowed_users_and_groups=[
        PackageAccessEntity(resource_id="6a1f0b52-3c4d-4e5f-8a9b-0c1d2e3f4a5b", resource_type=AccessEntityType.Group)]))
    assert result is None, "204"
    # Block, unblock and reassign have no request builder in this SDK
    # version; they go through the SDK's own request adapter.
    for action, body in [("block", None), ("reassign", {"userId": "22222222-0000-4000-8000-000000000002"})]:
        request = RequestInformation(Method.POST, "{+baseurl}/copilot/admin/catalog/packages/{id}/" + action, {"id": TRAVEL})
        if body is not None:
            import json
            request.set_stream_content(json.dumps(body).encode(), "application/json")
        await adapter.send_no_response_content_async(request, None)
    detail = await item.get()
    assert detail.is_blocked and detail.owner_id == "22222222-0000-4000-8000-000000000002", detail
    assert detail.allowed_users_and_groups[0].resource_type == AccessEntityType.Group, detail
    assert str(detail.available_to.value) == "some", detail.available_to


async def packages_v1():
    adapter = AgentsM365CopilotRequestAdapter(auth())
    adapter.base_url = ORIGIN + "/v1.0"
    packages = AgentsM365CopilotServiceClient(request_adapter=adapter).copilot.admin.catalog.packages
    listed = await packages.get()
    assert len(listed.value) == 2, listed.value
    assert await packages.count.get() == 2
    detail = await packages.by_copilot_package_detail_id(TRAVEL).get()
    assert detail.display_name == "Contoso Travel Agent" and detail.active_users == 42, detail


async def batching(copilot, adapter):
    """Two package reads and a registration create in one $batch, through
    msgraph-core's batch builder (as Graph SDK users batch)."""
    from msgraph_core.requests.batch_request_builder import BatchRequestBuilder
    from msgraph_core.requests.batch_request_content import BatchRequestContent
    from msgraph_core.requests.batch_request_item import BatchRequestItem

    content = BatchRequestContent()
    listing = BatchRequestItem(request_information=copilot.admin.catalog.packages.to_get_request_information())
    detail = BatchRequestItem(
        request_information=copilot.admin.catalog.packages.by_copilot_package_detail_id(TRAVEL).to_get_request_information(),
        depends_on=[listing])
    missing = BatchRequestItem(
        request_information=copilot.agent_registrations.by_agent_registration_id("nobody").to_get_request_information())
    for item in (listing, detail, missing):
        content.add_request(item.id, item)
    result = await BatchRequestBuilder(adapter).post(content)
    statuses = result.get_response_status_codes()
    assert statuses == {listing.id: 200, detail.id: 200, missing.id: 404}, statuses


async def main():
    adapter = AgentsM365CopilotBetaRequestAdapter(auth())
    adapter.base_url = ORIGIN + "/beta"
    copilot = AgentsM365CopilotBetaServiceClient(request_adapter=adapter).copilot
    await registrations(copilot)
    await packages_beta(copilot, adapter)
    await batching(copilot, adapter)
    await packages_v1()
    print("microsoft-agents-m365copilot(-beta): every Agent 365 call answered as expected")


asyncio.run(main())
