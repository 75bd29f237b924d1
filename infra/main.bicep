// Custom-image Batch pools, hands-off: everything `azd up` deploys.
//
// Subscription scope: the deployment creates the app's resource group, the two
// least-privilege custom roles (role definitions live at subscription scope) and
// assigns them on the teams' imaging resource groups and Batch accounts, which
// may sit in other resource groups (or subscriptions) than the app.
targetScope = 'subscription'

// -- parameters ---------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; prefixes the resource group and tags every resource (azd-env-name).')
param environmentName string

// Regions where the Flex Consumption plan is available (Azure Functions docs, "Flex Consumption plan").
@allowed([
  'australiaeast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@metadata({ azd: { type: 'location' } })
@description('Region of the app resources. Must offer the Flex Consumption plan.')
param location string

@minLength(1)
@description('Resource group ids (/subscriptions/<id>/resourceGroups/<name>) where teams keep their builder VMs, disks, snapshots, images and galleries. The function may act only inside these and the Batch accounts; the imaging role is assigned on each.')
param imagingResourceGroupIds array

@minLength(1)
@description('Batch account ids (/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Batch/batchAccounts/<name>) the function may create and resize pools in; the Batch role is assigned on each.')
param batchAccountIds array

@description('Compute Gallery ids teams publish image versions to. Each must lie inside one of imagingResourceGroupIds (the function rejects requests naming anything outside the allowed scopes); listed so a typo fails the deploy instead of the first request.')
param galleryIds array = []

@description('Batch account ids (a subset of batchAccountIds) whose every fixed-scale pool the guard keeps at target, not only the pools the pipeline created. Empty: pipeline pools only.')
param guardedBatchAccountIds array = []

@allowed([
  'resourceGroups'
  'subscription'
])
@description('Where ARM events are watched: one Event Grid system topic per imaging resource group and Batch account resource group, or one per subscription those live in. Azure allows one system topic per source: an existing one is reused (existingSystemTopics).')
param watchScope string = 'resourceGroups'

@description('JSON object: lower-cased source id -> id of the system topic that already exists for it (set by scripts/preprovision, which lists them). Those topics are reused, none is created for their source.')
param existingSystemTopics string = '{}'

@minLength(11)
@maxLength(100)
@description('NCRONTAB (six fields, seconds first) of the pool guard sweep. Default: every 5 minutes.')
param guardSchedule string = '0 */5 * * * *'

@minValue(1)
@maxValue(20)
@description('Resizes without node progress after which the guard stops resizing a pool and alerts (circuit breaker).')
param guardMaxResizesWithoutProgress int = 3

@minValue(5)
@maxValue(1440)
@description('Minutes after which a request that has not left its stage is re-driven by the sweep.')
param stuckRequestMinutes int = 30

@secure()
@description('Signs the retry properties of requests the app sends back to its queue (Key Vault). A new random value on each provision; leave it to the default.')
param messageSigningKey string = newGuid() // checkov:skip=CKV_AZURE_131: newGuid() is a new random value made by each deployment, never a literal; it goes only into Key Vault

@minValue(1)
@maxValue(3650)
@description('Days after which an answered final request keeps only its id, stage, reason, times and plan in the ledger.')
param ledgerRetentionDays int = 90

@minValue(1)
@maxValue(3650)
@description('Days from a refresh moving a pool off a gallery image version to that version\'s endOfLifeDate (it is also excluded from latest).')
param retiredVersionEndOfLifeDays int = 30

@minValue(1)
@maxValue(1440)
@description('Minutes during which a repeated alert about the same resource is not published again.')
param alertDedupMinutes int = 60

@description('Keep the CanNotDelete locks on images and their lineage after a pool is gone (ops then remove them by hand).')
param keepImageLocks bool = false

@description('Accept requests for pools straight from a managed image (image.legacyManagedImage): Batch retired them on 2026-03-31; only for a cloud that still accepts them.')
param allowLegacyManagedImagePools bool = false

@minLength(3)
@maxLength(63)
@description('Name of the ledger table (3-63 letters or digits, starting with a letter).')
param ledgerTableName string = 'poolrequests'

@minLength(1)
@maxLength(50)
@description('Service Bus queue teams send pool requests to.')
param poolRequestsQueueName string = 'pool-requests'

@minLength(1)
@maxLength(50)
@description('Service Bus queue of the scheduled per-pool checks.')
param poolChecksQueueName string = 'pool-checks'

@description('The teams\' reply queues: created here, the only queues the function may send replies to (REPLY_QUEUES); a request\'s ReplyTo names one.')
param teamReplyQueues array = []

@minLength(6)
@description('E-mail address the alerts action group notifies.')
param alertEmail string

@description('Object id of the person running azd (set by azd); gets the data roles the command line needs: send requests, read the ledger and write the event probe\'s findings. Empty: none.')
param principalId string = ''

// The four custom roles (cli/deploy/roles.py, every action with why), created by the preprovision hook
// (python -m cli deploy prepare) and read back by id until they replicated, so the assignments below find them.
@minLength(1)
@description('Id of the imaging custom role (IMAGING_ROLE_ID, set by the preprovision hook).')
param imagingRoleId string

@minLength(1)
@description('Id of the Batch custom role (BATCH_ROLE_ID, set by the preprovision hook).')
param batchRoleId string

@minLength(1)
@description('Id of the Batch VM sizes custom role (BATCH_SKUS_ROLE_ID, set by the preprovision hook).')
param batchSkusRoleId string

@minLength(1)
@description('Id of the protection audit custom role (PROTECTION_AUDIT_ROLE_ID, set by the preprovision hook).')
param protectionAuditRoleId string

// -- names ----------------------------------------------------------------------

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
// Ids are compared lower-cased: ARM ids are case-insensitive, union() and contains() on arrays are not.
var batchAccountResourceGroupIds = [for id in batchAccountIds: toLower(substring(id, 0, indexOf(toLower(id), '/providers/microsoft.batch/')))]
// union() also removes duplicates: one system topic per resource group.
var imagingResourceGroupIdsLower = [for id in imagingResourceGroupIds: toLower(id)]
var watchedResourceGroupIds = union(imagingResourceGroupIdsLower, batchAccountResourceGroupIds)
// Each subscription holding an imaging resource group once (the protection audit role is assigned there).
var imagingSubscriptionIdList = [for id in imagingResourceGroupIdsLower: split(id, '/')[2]]
var imagingSubscriptionIds = union(imagingSubscriptionIdList, [])
// Each subscription holding a Batch account once (the Batch VM sizes role is assigned there): two accounts in one
// subscription would otherwise deploy the same assignment twice, in parallel.
var batchSubscriptionIdList = [for id in batchAccountIds: toLower(split(id, '/')[2])]
var batchSubscriptionIds = union(batchSubscriptionIdList, [])
// Every subscription an imaging resource group or a Batch account lives in (watchScope=subscription).
var watchedResourceGroupSubscriptions = [for id in watchedResourceGroupIds: '/subscriptions/${split(id, '/')[2]}']
var watchedSubscriptionIds = union(watchedResourceGroupSubscriptions, [])
var watchedSources = watchScope == 'subscription' ? watchedSubscriptionIds : watchedResourceGroupIds
var reusedTopics = json(empty(existingSystemTopics) ? '{}' : existingSystemTopics)
// One entry per watched resource group; with watchScope=subscription only the first resource group of
// each subscription carries that subscription's topic. A source with a topic already is not given another.
var topicSources = [for (id, i) in watchedResourceGroupIds: watchScope == 'subscription' ? watchedResourceGroupSubscriptions[i] : id]
var topicWanted = [for (id, i) in watchedResourceGroupIds: (watchScope != 'subscription' || indexOf(watchedResourceGroupSubscriptions, watchedResourceGroupSubscriptions[i]) == i) && !contains(reusedTopics, topicSources[i])]
var reusedTopicIds = [for topic in items(reusedTopics): topic.value]
var newTopicIds = [for (id, i) in watchedResourceGroupIds: topicWanted[i] ? '${id}/providers/Microsoft.EventGrid/systemTopics/evgt-${resourceToken}-${uniqueString(topicSources[i])}' : '']
var functionAppName = 'func-${resourceToken}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

// -- identities, monitoring, storage, messaging ----------------------------------

module identities 'core/identities.bicep' = {
  name: 'identities'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
  }
}

module monitoring 'core/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    publisherPrincipalId: identities.outputs.appPrincipalId
  }
}

module storage 'core/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    ledgerTableName: ledgerTableName
    appPrincipalId: identities.outputs.appPrincipalId
    eventGridPrincipalId: identities.outputs.eventGridPrincipalId
    operatorPrincipalId: principalId
  }
}

module serviceBus 'core/servicebus.bicep' = {
  name: 'servicebus'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    poolRequestsQueueName: poolRequestsQueueName
    poolChecksQueueName: poolChecksQueueName
    teamReplyQueues: teamReplyQueues
    appPrincipalId: identities.outputs.appPrincipalId
    eventGridPrincipalId: identities.outputs.eventGridPrincipalId
    operatorPrincipalId: principalId
  }
}

module keyVault 'core/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    appPrincipalId: identities.outputs.appPrincipalId
    messageSigningKey: messageSigningKey
  }
}

module alerts 'app/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    appPrincipalId: identities.outputs.appPrincipalId
    eventGridIdentityId: identities.outputs.eventGridIdentityId
    alertsQueueId: serviceBus.outputs.alertsQueueId
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    alertEmail: alertEmail
  }
}

// -- the Function App -------------------------------------------------------------

module functionApp 'app/function.bicep' = {
  name: 'function'
  scope: rg
  params: {
    location: location
    tags: union(tags, { 'azd-service-name': 'api' })
    name: functionAppName
    planName: 'plan-${resourceToken}'
    identityId: identities.outputs.appIdentityId
    identityClientId: identities.outputs.appClientId
    storageAccountName: storage.outputs.name
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    applicationInsightsConnectionString: monitoring.outputs.applicationInsightsConnectionString
    // Every app setting the code reads (shared/settings.py ALL_SETTING_NAMES);
    // tests/infra/test_settings_parity.py keeps this list and the code equal.
    appSettings: {
      SERVICEBUS__fullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
      POOL_REQUESTS_QUEUE: poolRequestsQueueName
      POOL_CHECKS_QUEUE: poolChecksQueueName
      ARM_ENDPOINT: environment().resourceManager
      ALERTS_TOPIC_ENDPOINT: alerts.outputs.topicEndpoint
      LEDGER_TABLE_ENDPOINT: storage.outputs.tableEndpoint
      LEDGER_TABLE_NAME: ledgerTableName
      ALLOWED_SCOPES: join(concat(imagingResourceGroupIds, batchAccountIds), ',')
      GUARD_SCHEDULE: guardSchedule
      GUARDED_BATCH_ACCOUNTS: join(guardedBatchAccountIds, ',')
      GUARD_MAX_RESIZES_WITHOUT_PROGRESS: string(guardMaxResizesWithoutProgress)
      STUCK_REQUEST_MINUTES: string(stuckRequestMinutes)
      ALERT_DEDUP_MINUTES: string(alertDedupMinutes)
      KEEP_IMAGE_LOCKS: keepImageLocks ? 'true' : 'false'
      ALLOW_LEGACY_MANAGED_IMAGE_POOLS: allowLegacyManagedImagePools ? 'true' : 'false'
      REPLY_QUEUES: join(teamReplyQueues, ',')
      LEDGER_RETENTION_DAYS: string(ledgerRetentionDays)
      RETIRED_VERSION_END_OF_LIFE_DAYS: string(retiredVersionEndOfLifeDays)
      MESSAGE_SIGNING_KEY: keyVault.outputs.messageSigningKeyReference
    }
  }
}

// -- least privilege on the teams' resources ----------------------------------------

// Nested deployment names carry the resource token (subscription, environment, region): a deployment name is unique
// per resource group or subscription, and a subscription-scope one also keeps its first region ("deployment already
// exists in location"), so a second environment, or the same one in another region, must not reuse them.
module imagingAccess 'access/imaging-access.bicep' = [for (id, i) in imagingResourceGroupIds: {
  name: 'imaging-access-${resourceToken}-${i}'
  scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
  params: {
    roleDefinitionId: imagingRoleId
    principalId: identities.outputs.appPrincipalId
  }
}]

module batchAccess 'access/batch-access.bicep' = [for (id, i) in batchAccountIds: {
  name: 'batch-access-${resourceToken}-${i}'
  scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
  params: {
    batchAccountName: last(split(id, '/'))
    roleDefinitionId: batchRoleId
    principalId: identities.outputs.appPrincipalId
  }
}]

module batchSkusAccess 'access/subscription-access.bicep' = [for (id, i) in batchSubscriptionIds: {
  name: 'batch-skus-access-${resourceToken}-${i}'
  scope: subscription(id)
  params: {
    roleDefinitionId: batchSkusRoleId
    principalId: identities.outputs.appPrincipalId
  }
}]

module protectionAuditAccess 'access/subscription-access.bicep' = [for (id, i) in imagingSubscriptionIds: {
  name: 'protection-audit-access-${resourceToken}-${i}'
  scope: subscription(id)
  params: {
    roleDefinitionId: protectionAuditRoleId
    principalId: identities.outputs.appPrincipalId
  }
}]

module galleryCheck 'access/gallery-check.bicep' = [for (id, i) in galleryIds: {
  name: 'gallery-check-${resourceToken}-${i}'
  scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
  params: {
    galleryName: last(split(id, '/'))
  }
}]

// -- ARM events -----------------------------------------------------------------------

// One system topic per watched source unless one exists already (Azure allows one per source,
// and the implicit subscription topic may sit in Default-EventGrid): the preprovision hook finds
// them; the postdeploy hook (python -m cli deploy subscribe) gives a reused one the Event Grid
// identity dead-lettering needs and subscribes resource_events to each, reused or new.
module systemTopics 'events/system-topic.bicep' = [for (id, i) in watchedResourceGroupIds: {
  name: 'events-${resourceToken}-${i}'
  scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
  params: {
    create: topicWanted[i]
    name: last(split(empty(newTopicIds[i]) ? 'none' : newTopicIds[i], '/'))
    source: topicSources[i]
    topicType: watchScope == 'subscription' ? 'Microsoft.Resources.Subscriptions' : 'Microsoft.Resources.ResourceGroups'
    identityId: identities.outputs.eventGridIdentityId
    tags: tags
  }
}]

// -- outputs (azd stores them in the environment; the postdeploy hook reads them) -----

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_ID string = functionApp.outputs.id
output SERVICEBUS_NAMESPACE string = serviceBus.outputs.fullyQualifiedNamespace
output POOL_REQUESTS_QUEUE string = poolRequestsQueueName
output POOL_CHECKS_QUEUE string = poolChecksQueueName
output ALERTS_TOPIC_ENDPOINT string = alerts.outputs.topicEndpoint
output LEDGER_TABLE_ENDPOINT string = storage.outputs.tableEndpoint
output LEDGER_TABLE_NAME string = ledgerTableName
output ALLOWED_SCOPES string = join(concat(imagingResourceGroupIds, batchAccountIds), ',')
output ARM_ENDPOINT string = environment().resourceManager
// Reused topics first, then the new ones (empty entries, for resource groups that got none, are skipped by the hook).
output EVENTGRID_SYSTEM_TOPIC_IDS string = join(concat(reusedTopicIds, newTopicIds), ',')
output EVENTGRID_WATCHED_SOURCES string = join(watchedSources, ',')
output EVENTGRID_DEADLETTER_STORAGE_ID string = storage.outputs.id
output EVENTGRID_DEADLETTER_CONTAINER string = storage.outputs.deadLetterContainerName
output EVENTGRID_IDENTITY_ID string = identities.outputs.eventGridIdentityId
// What python -m cli verify checks against (besides the app settings above).
output AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID string = identities.outputs.appPrincipalId
output SERVICEBUS_NAMESPACE_ID string = serviceBus.outputs.id
output LEDGER_TABLE_ID string = '${storage.outputs.id}/tableServices/default/tables/${ledgerTableName}'
output ALERTS_TOPIC_ID string = alerts.outputs.topicId
output EVENTGRID_IDENTITY_PRINCIPAL_ID string = identities.outputs.eventGridPrincipalId
output HOST_STORAGE_ID string = storage.outputs.id
output KEY_VAULT_ID string = keyVault.outputs.id
output APPLICATIONINSIGHTS_ID string = monitoring.outputs.applicationInsightsId
