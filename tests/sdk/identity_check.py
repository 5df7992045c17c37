"""Obtains a token from Agentry's built-in identity provider with the official
Azure Identity client-secret credential, then calls the API with it.
Usage: identity_check.py HTTPS_ORIGIN TENANT CLIENT_ID CLIENT_SECRET CA_CERT"""
import json
import ssl
import sys
import urllib.request

from azure.identity import ClientSecretCredential

origin, tenant, client_id, secret, ca = sys.argv[1:6]
credential = ClientSecretCredential(
    tenant, client_id, secret, authority=origin, disable_instance_discovery=True, connection_verify=ca
)
token = credential.get_token("https://graph.microsoft.com/.default")
request = urllib.request.Request(
    f"{origin}/beta/agentRegistry/agentInstances", headers={"Authorization": f"Bearer {token.token}"}
)
with urllib.request.urlopen(request, context=ssl.create_default_context(cafile=ca)) as response:
    body = json.loads(response.read())
    assert response.status == 200 and "value" in body, body
print("azure-identity: client credentials from Agentry's authority work")
