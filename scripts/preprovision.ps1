# azd preprovision hook (Windows, PowerShell 7): the same steps as preprovision.sh.
# 1. Deploy the custom roles and wait until they can be read (role definitions replicate slowly;
#    an assignment made before fails with RoleDefinitionDoesNotExist).
# 2. Find the system topics that already exist for the watched sources (one per source in Azure)
#    and hand them to the deployment as EXISTING_SYSTEM_TOPICS, to be reused.
$ErrorActionPreference = 'Stop'
foreach ($name in 'AZURE_ENV_NAME', 'AZURE_LOCATION', 'IMAGING_RESOURCE_GROUP_IDS', 'BATCH_ACCOUNT_IDS') {
    if (-not (Get-Item "env:$name" -ErrorAction SilentlyContinue)) { throw "set $name" }
}
$root = Split-Path -Parent $PSScriptRoot
$roleIds = az deployment sub create --location $env:AZURE_LOCATION --name "roles-$($env:AZURE_ENV_NAME)" `
    --template-file (Join-Path $root 'infra/access/roles.bicep') `
    --parameters environmentName=$env:AZURE_ENV_NAME location=$env:AZURE_LOCATION `
        imagingResourceGroupIds=$env:IMAGING_RESOURCE_GROUP_IDS batchAccountIds=$env:BATCH_ACCOUNT_IDS `
    --query "properties.outputs.[imagingRoleId.value, batchRoleId.value, batchSkusRoleId.value, protectionAuditRoleId.value]" -o tsv
if ($LASTEXITCODE -ne 0) { throw 'deploying infra/access/roles.bicep failed' }
foreach ($roleId in $roleIds) {
    $tries = 0
    while (-not (az role definition list --name (Split-Path -Leaf $roleId) --custom-role-only true --query '[0].id' -o tsv 2>$null)) {
        $tries++
        if ($tries -ge 30) { throw "role $roleId not readable after 5 minutes" }
        Start-Sleep -Seconds 10
    }
}
$groups = @(($env:IMAGING_RESOURCE_GROUP_IDS | ConvertFrom-Json)) + @(($env:BATCH_ACCOUNT_IDS | ConvertFrom-Json) | ForEach-Object { ($_ -split '/providers/')[0] })
$sources = $groups | ForEach-Object { $_.ToLowerInvariant() } | Sort-Object -Unique
if ($env:WATCH_SCOPE -eq 'subscription') { $sources = $sources | ForEach-Object { ($_ -split '/')[0..2] -join '/' } | Sort-Object -Unique }
$found = @{}
foreach ($subscription in ($sources | ForEach-Object { ($_ -split '/')[2] } | Sort-Object -Unique)) {
    foreach ($topic in (az eventgrid system-topic list --subscription $subscription -o json | ConvertFrom-Json)) {
        $source = "$($topic.source)".ToLowerInvariant()
        if ($sources -contains $source) { Write-Host "Reusing system topic $($topic.id) for $source"; $found[$source] = $topic.id }
    }
}
azd env set EXISTING_SYSTEM_TOPICS ($found | ConvertTo-Json -Compress)
