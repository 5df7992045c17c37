"""Lists the operations (method and path template) of the request builders
of Microsoft's SDKs installed in this Python environment (the Agent 365
SDKs under /copilot, msgraph-beta-sdk under /agentRegistry, /auditLogs and /subscriptions), under the roots
Agentry serves, one per line: `GET /beta/copilot/agents/{id}`. Parameters
are written `{id}`. Usage: list_operations.py > src/http/sdk_operations.txt
(run in the virtualenv of tests/sdk/sessions.sh)."""
import importlib.util
import os
import re

# (package, version, the folders of the roots Agentry serves)
PACKAGES = [
    ("microsoft_agents_m365copilot_beta", "/beta", ("copilot",)),
    ("microsoft_agents_m365copilot", "/v1.0", ("copilot",)),
    ("msgraph_beta", "/beta", ("agent_registry", "audit_logs", "subscriptions")),
]


def builders(package, roots):
    spec = importlib.util.find_spec(package)
    base = os.path.join(os.path.dirname(spec.origin), "generated")
    for root in roots:
        for folder, _, files in os.walk(os.path.join(base, root)):
            for name in files:
                if name.endswith("_request_builder.py"):
                    yield os.path.join(folder, name)


ops = set()
for package, version, roots in PACKAGES:
    for path in builders(package, roots):
        text = open(path).read()
        found = re.search(r'super\(\).__init__\(request_adapter, "\{\+baseurl\}([^"]+)"', text)
        if not found:
            continue
        template = re.sub(r"\{\?[^}]*\}", "", found.group(1))
        template = re.sub(r"\{[^}]*\}", "{id}", template)
        for method in re.findall(r"async def (get|post|patch|put|delete)\(", text):
            ops.add(f"{method.upper()} {version}{template}")
print("\n".join(sorted(ops, key=lambda o: (o.split(" ")[1], o))))
