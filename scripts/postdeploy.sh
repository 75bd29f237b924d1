#!/bin/sh
# azd postdeploy hook (POSIX sh; postdeploy.ps1 is the Windows twin): subscribe `resource_events` to every Event
# Grid system topic, reused or new (python -m cli deploy subscribe, cli/deploy/events.py). It runs after the code
# is deployed because Event Grid checks an Azure Function endpoint when a subscription is created; it waits until
# ARM lists the function, gives a reused topic the identity dead-lettering needs, and names the subscription after
# the azd environment. Re-running it is safe: azd hooks run postdeploy.
set -eu
: "${AZURE_SUBSCRIPTION_ID:?azd sets AZURE_SUBSCRIPTION_ID; run azd env refresh or azd env set AZURE_SUBSCRIPTION_ID <id>}"
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/bootstrap" --deploy
cd "$here"
exec "$here/.venv/bin/python" -m cli deploy subscribe --subscription "$AZURE_SUBSCRIPTION_ID"
