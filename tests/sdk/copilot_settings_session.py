"""Drives the Copilot admin settings of a running Agentry, started with
examples/seed.json, with Microsoft's SDKs unchanged but for the base URL and
the token: microsoft-agents-m365copilot-beta for every setting on /beta,
microsoft-agents-m365copilot for limitedMode on /v1.0.
Usage: copilot_settings_session.py ORIGIN TOKEN"""
import asyncio
import sys

from azure.core.credentials import AccessToken
from kiota_abstractions.api_error import APIError
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from microsoft_agents_m365copilot import AgentsM365CopilotServiceClient
from microsoft_agents_m365copilot.agents_m365_copilot_request_adapter import AgentsM365CopilotRequestAdapter
from microsoft_agents_m365copilot.generated.models.copilot_admin_limited_mode import CopilotAdminLimitedMode as LimitedModeV1
from microsoft_agents_m365copilot_beta import AgentsM365CopilotBetaServiceClient
from microsoft_agents_m365copilot_beta.agents_m365_copilot_beta_request_adapter import AgentsM365CopilotBetaRequestAdapter
from microsoft_agents_m365copilot_beta.generated.models.copilot_admin_limited_mode import CopilotAdminLimitedMode
from microsoft_agents_m365copilot_beta.generated.models.copilot_policy_setting import CopilotPolicySetting
from microsoft_agents_m365copilot_beta.generated.models.enhanced_personalization_setting import EnhancedPersonalizationSetting

ORIGIN, TOKEN = sys.argv[1], sys.argv[2]


class StaticToken:
    def __init__(self, token):
        self.token = token

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self.token, 2**31 - 1)


async def main():
    auth = AzureIdentityAuthenticationProvider(StaticToken(TOKEN), allowed_hosts=["127.0.0.1", "localhost"])
    adapter = AgentsM365CopilotBetaRequestAdapter(auth)
    adapter.base_url = ORIGIN + "/beta"
    copilot = AgentsM365CopilotBetaServiceClient(request_adapter=adapter).copilot
    pinning = copilot.admin.policy_settings.by_copilot_policy_setting_id("microsoft.copilot.copilotchatpinning")
    got = await pinning.get()
    assert got.id == "microsoft.copilot.copilotchatpinning" and got.policy_id, got
    updated = await pinning.patch(CopilotPolicySetting(value="0"))
    assert updated.value == "0" and updated.policy_id == got.policy_id, updated
    limited = copilot.admin.settings.limited_mode
    mode = await limited.patch(CopilotAdminLimitedMode(is_enabled_for_group=True, group_id="g1"))
    assert mode.is_enabled_for_group and mode.group_id == "g1", mode
    mode = await limited.get()
    assert mode.is_enabled_for_group is True and mode.group_id == "g1", mode
    personalization = copilot.settings.people.enhanced_personalization
    people = await personalization.get()
    assert people.is_enabled_in_organization is not None, people
    people = await personalization.patch(EnhancedPersonalizationSetting(is_enabled_in_organization=False, disabled_for_group="g2"))
    assert people.is_enabled_in_organization is False and people.disabled_for_group == "g2", people
    assert (await personalization.get()).disabled_for_group == "g2"
    try:
        await copilot.admin.policy_settings.by_copilot_policy_setting_id("microsoft.copilot.nope").get()
        raise AssertionError("an unknown setting should be refused")
    except APIError as e:
        assert e.response_status_code == 404 and e.error.code == "notFound", e

    # The same limitedMode on /v1.0, through the v1.0 SDK.
    v1 = AgentsM365CopilotRequestAdapter(auth)
    v1.base_url = ORIGIN + "/v1.0"
    limited_v1 = AgentsM365CopilotServiceClient(request_adapter=v1).copilot.admin.settings.limited_mode
    mode = await limited_v1.get()
    assert mode.is_enabled_for_group is True and mode.group_id == "g1", mode
    mode = await limited_v1.patch(LimitedModeV1(is_enabled_for_group=False))
    assert mode.is_enabled_for_group is False, mode
    assert (await limited.get()).is_enabled_for_group is False, "one setting behind both versions"
    print("microsoft-agents-m365copilot(-beta): every Copilot settings call answered as expected")


asyncio.run(main())
