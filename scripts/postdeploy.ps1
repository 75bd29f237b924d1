# azd postdeploy hook (Windows, PowerShell 7): the same steps as postdeploy.sh.
# Subscribes `resource_events` to every Event Grid system topic (reused or created), after
# waiting (bounded) until the function is visible in ARM: Event Grid checks the endpoint.
$ErrorActionPreference = 'Stop'
if (-not $env:EVENTGRID_SYSTEM_TOPIC_IDS) { throw 'run azd provision first (output EVENTGRID_SYSTEM_TOPIC_IDS missing)' }
if (-not $env:AZURE_FUNCTION_APP_ID) { throw 'output AZURE_FUNCTION_APP_ID missing' }
$root = Split-Path -Parent $PSScriptRoot
foreach ($topicId in ($env:EVENTGRID_SYSTEM_TOPIC_IDS -split ',' | Where-Object { $_ })) {
    $parts = $topicId -split '/'
    $subscription = $parts[2]; $resourceGroup = $parts[4]; $topicName = $parts[8]
    Write-Host "Subscribing resource_events to $topicName ($resourceGroup)"
    $tries = 0
    while ($true) {
        az resource show --ids "$($env:AZURE_FUNCTION_APP_ID)/functions/resource_events" --output none 2>$null
        if ($LASTEXITCODE -eq 0) { break }
        $tries++
        if ($tries -ge 30) { throw 'resource_events is still not visible in ARM after 5 minutes; run: azd hooks run postdeploy' }
        Start-Sleep -Seconds 10
    }
    az deployment group create `
        --subscription $subscription `
        --resource-group $resourceGroup `
        --name "resource-events-$topicName" `
        --template-file (Join-Path $root 'infra/events/resource-events-subscription.bicep') `
        --parameters systemTopicName=$topicName functionAppId=$env:AZURE_FUNCTION_APP_ID `
            deadLetterStorageId=$env:EVENTGRID_DEADLETTER_STORAGE_ID deadLetterContainerName=$env:EVENTGRID_DEADLETTER_CONTAINER `
            eventGridIdentityId=$env:EVENTGRID_IDENTITY_ID `
        --output none
    if ($LASTEXITCODE -ne 0) { throw "subscribing $topicName failed" }
}
