#!/bin/sh
# azd preprovision hook (POSIX sh; preprovision.ps1 is the Windows twin). What one Bicep deployment cannot do
# for itself runs in Python with the Azure SDKs (python -m cli deploy prepare, cli/deploy/), in azd's subscription:
# 1. create the four custom roles and read each back by id until ARM finds it (a new role replicates slowly and an
#    assignment made before it has fails with RoleDefinitionDoesNotExist); their ids go to azd for main.bicep;
# 2. find the Event Grid system topics that already exist for the watched sources (Azure allows one per source)
#    and hand them to the deployment as EXISTING_SYSTEM_TOPICS, so they are reused instead of duplicated.
set -eu
: "${AZURE_SUBSCRIPTION_ID:?azd sets AZURE_SUBSCRIPTION_ID; run azd env refresh or azd env set AZURE_SUBSCRIPTION_ID <id>}"
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/bootstrap" --deploy
cd "$here"
exec "$here/.venv/bin/python" -m cli deploy prepare --subscription "$AZURE_SUBSCRIPTION_ID"
