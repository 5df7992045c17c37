"""Drives a running Agentry with Microsoft's microsoft-agents-m365copilot-beta
SDK, unchanged but for the base URL and the token, on a server started with
examples/seed.json. Usage: copilot_smoke.py BASE_URL TOKEN"""
import asyncio
import sys

from azure.core.credentials import AccessToken
from kiota_abstractions.api_error import APIError
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from microsoft_agents_m365copilot_beta import AgentsM365CopilotBetaServiceClient
from microsoft_agents_m365copilot_beta.agents_m365_copilot_beta_request_adapter import AgentsM365CopilotBetaRequestAdapter
from microsoft_agents_m365copilot_beta.generated.models.copilot_admin_limited_mode import CopilotAdminLimitedMode
from microsoft_agents_m365copilot_beta.generated.models.copilot_policy_setting import CopilotPolicySetting

BASE, TOKEN = sys.argv[1], sys.argv[2]


class StaticToken:
    def __init__(self, token):
        self.token = token

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self.token, 2**31 - 1)


async def main():
    auth = AzureIdentityAuthenticationProvider(StaticToken(TOKEN), allowed_hosts=["127.0.0.1", "localhost"])
    adapter = AgentsM365CopilotBetaRequestAdapter(auth)
    adapter.base_url = BASE
    copilot = AgentsM365CopilotBetaServiceClient(request_adapter=adapter).copilot
    pinning = copilot.admin.policy_settings.by_copilot_policy_setting_id("microsoft.copilot.copilotchatpinning")
    got = await pinning.get()
    assert got.id == "microsoft.copilot.copilotchatpinning" and got.policy_id, got
    updated = await pinning.patch(CopilotPolicySetting(value="0"))
    assert updated.value == "0" and updated.policy_id == got.policy_id, updated
    mode = await copilot.admin.settings.limited_mode.patch(CopilotAdminLimitedMode(is_enabled_for_group=True, group_id="g1"))
    assert mode.is_enabled_for_group and mode.group_id == "g1", mode
    people = await copilot.settings.people.enhanced_personalization.get()
    assert people.is_enabled_in_organization is not None, people
    try:
        await copilot.admin.policy_settings.by_copilot_policy_setting_id("microsoft.copilot.nope").get()
        raise AssertionError("an unknown setting should be refused")
    except APIError as e:
        assert e.response_status_code == 404 and e.error.code == "notFound", e
    print("microsoft-agents-m365copilot-beta: every call answered as expected")


asyncio.run(main())
