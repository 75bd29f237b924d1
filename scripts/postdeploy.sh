#!/bin/sh
# azd postdeploy hook: subscribe `resource_events` to every Event Grid system
# topic main.bicep created. Runs after the code is deployed because Event Grid
# checks an Azure Function endpoint when the subscription is created.
# azd passes the provision outputs as environment variables.
set -eu
: "${EVENTGRID_SYSTEM_TOPIC_IDS:?run azd provision first (output EVENTGRID_SYSTEM_TOPIC_IDS missing)}"
: "${AZURE_FUNCTION_APP_ID:?output AZURE_FUNCTION_APP_ID missing}"
here=$(cd "$(dirname "$0")/.." && pwd)

old_ifs=$IFS
IFS=','
for topic_id in $EVENTGRID_SYSTEM_TOPIC_IDS; do
  IFS=$old_ifs
  [ -n "$topic_id" ] || continue
  subscription=$(echo "$topic_id" | cut -d/ -f3)
  resource_group=$(echo "$topic_id" | cut -d/ -f5)
  topic_name=$(echo "$topic_id" | cut -d/ -f9)
  echo "Subscribing resource_events to $topic_name ($resource_group)"
  # Right after `azd deploy` the function may not be visible in ARM yet, and Event Grid refuses
  # an AzureFunction endpoint it cannot find: wait for it (bounded: 30 tries, 10 s apart).
  tries=0
  until az resource show --ids "$AZURE_FUNCTION_APP_ID/functions/resource_events" --output none 2>/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -ge 30 ]; then
      echo "resource_events is still not visible in ARM after 5 minutes; run: azd hooks run postdeploy" >&2
      exit 1
    fi
    sleep 10
  done
  az deployment group create \
    --subscription "$subscription" \
    --resource-group "$resource_group" \
    --name "resource-events-$topic_name" \
    --template-file "$here/infra/events/resource-events-subscription.bicep" \
    --parameters \
      systemTopicName="$topic_name" \
      functionAppId="$AZURE_FUNCTION_APP_ID" \
      deadLetterStorageId="$EVENTGRID_DEADLETTER_STORAGE_ID" \
      deadLetterContainerName="$EVENTGRID_DEADLETTER_CONTAINER" \
      eventGridIdentityId="$EVENTGRID_IDENTITY_ID" \
    --output none
  IFS=','
done
IFS=$old_ifs
