#!/bin/sh
# azd preprovision hook (POSIX sh; preprovision.ps1 is the Windows twin). Two things the Bicep
# deployment cannot do for itself:
# 1. Deploy the custom roles (infra/access/roles.bicep) and wait until each can be read: a role
#    definition takes time to replicate and an assignment made before it has fails with
#    RoleDefinitionDoesNotExist. main.bicep deploys the same module again (a no-op update).
# 2. Find the Event Grid system topics that already exist for the sources main.bicep watches
#    (Azure allows one per source; a subscription's may sit in Default-EventGrid) and hand them
#    to the deployment as EXISTING_SYSTEM_TOPICS, so they are reused instead of duplicated.
set -eu
: "${AZURE_ENV_NAME:?}" "${AZURE_LOCATION:?}" "${IMAGING_RESOURCE_GROUP_IDS:?set IMAGING_RESOURCE_GROUP_IDS}" "${BATCH_ACCOUNT_IDS:?set BATCH_ACCOUNT_IDS}"
here=$(cd "$(dirname "$0")/.." && pwd)
lower() { printf '%s' "$1" | tr '[:upper:]' '[:lower:]'; }
ids() { printf '%s' "$1" | tr -d '[]" ' | tr ',' '\n' | sed '/^$/d'; }

az deployment sub create --location "$AZURE_LOCATION" --name "roles-$AZURE_ENV_NAME" \
  --template-file "$here/infra/access/roles.bicep" \
  --parameters environmentName="$AZURE_ENV_NAME" location="$AZURE_LOCATION" \
    imagingResourceGroupIds="$IMAGING_RESOURCE_GROUP_IDS" batchAccountIds="$BATCH_ACCOUNT_IDS" \
  --query "properties.outputs.[imagingRoleId.value, batchRoleId.value, batchSkusRoleId.value, protectionAuditRoleId.value]" -o tsv > "${TMPDIR:-/tmp}/cip-roles.$$"
for role_id in $(cat "${TMPDIR:-/tmp}/cip-roles.$$"); do
  tries=0
  until az role definition list --name "$(basename "$role_id")" --custom-role-only true --query "[0].id" -o tsv 2>/dev/null | grep -q .; do
    tries=$((tries + 1)); [ "$tries" -lt 30 ] || { echo "role $role_id not readable after 5 minutes" >&2; exit 1; }
    sleep 10
  done
done
rm -f "${TMPDIR:-/tmp}/cip-roles.$$"

# The watched sources, lower-cased: the resource groups, or their subscriptions.
sources=$( { ids "$IMAGING_RESOURCE_GROUP_IDS"; ids "$BATCH_ACCOUNT_IDS" | sed 's#/providers/[Mm]icrosoft\.[Bb]atch/.*##'; } | tr '[:upper:]' '[:lower:]' | sort -u)
if [ "${WATCH_SCOPE:-resourceGroups}" = subscription ]; then
  sources=$(printf '%s\n' "$sources" | cut -d/ -f1-3 | sort -u)
fi
found="{"
for subscription in $(printf '%s\n' "$sources" | cut -d/ -f3 | sort -u); do
  az eventgrid system-topic list --subscription "$subscription" --query "[].[source, id]" -o tsv > "${TMPDIR:-/tmp}/cip-topics.$$"
  while IFS="$(printf '\t')" read -r source topic_id; do
    source=$(lower "$source")
    if printf '%s\n' "$sources" | grep -qx "$source"; then
      echo "Reusing system topic $topic_id for $source"
      [ "$found" = "{" ] || found="$found,"
      found="$found\"$source\":\"$topic_id\""
    fi
  done < "${TMPDIR:-/tmp}/cip-topics.$$"
  rm -f "${TMPDIR:-/tmp}/cip-topics.$$"
done
azd env set EXISTING_SYSTEM_TOPICS "$found}"
