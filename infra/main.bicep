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
@description('Where ARM events are watched: one Event Grid system topic per imaging resource group and Batch account resource group, or one for the whole subscription of this deployment (only one system topic per source may exist in Azure).')
param watchScope string = 'resourceGroups'

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

@minValue(1)
@maxValue(1440)
@description('Minutes during which a repeated alert about the same resource is not published again.')
param alertDedupMinutes int = 60

@description('Keep the CanNotDelete locks on images and their lineage after a pool is gone (ops then remove them by hand).')
param keepImageLocks bool = false

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

@description('Queues to create for teams\' replies (a request\'s ReplyTo names one). Teams may bring their own queues in the same namespace.')
param teamReplyQueues array = []

@minLength(6)
@description('E-mail address the alerts action group notifies.')
param alertEmail string

@description('Object id of the person running azd (set by azd); gets the data roles the command line needs: send requests, read the ledger. Empty: none.')
param principalId string = ''

// -- names ----------------------------------------------------------------------

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var batchAccountResourceGroupIds = [for id in batchAccountIds: substring(id, 0, indexOf(toLower(id), '/providers/microsoft.batch/'))]
// union() also removes duplicates: one system topic per resource group.
var watchedResourceGroupIds = union(imagingResourceGroupIds, batchAccountResourceGroupIds)
var functionAppName = 'func-${resourceToken}'
var resourceGroupTopicIds = [for id in watchedResourceGroupIds: '${id}/providers/Microsoft.EventGrid/systemTopics/evgt-${resourceToken}-${uniqueString(id)}']
var subscriptionTopicName = 'evgt-${resourceToken}-subscription'
var subscriptionTopicId = '${subscription().id}/resourceGroups/rg-${environmentName}/providers/Microsoft.EventGrid/systemTopics/${subscriptionTopicName}'

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
    }
  }
}

// -- least privilege on the teams' resources ----------------------------------------

// Every action, and why. Assigned only on imagingResourceGroupIds.
resource imagingRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'pool-imaging')
  properties: {
    roleName: 'Custom image pools imaging (${environmentName}-${resourceToken})'
    description: 'What the custom-image pool automation does in the teams\' imaging resource groups: snapshot a prepared VM, build a managed image and a gallery image version, lock what a pool uses.'
    type: 'CustomRole'
    assignableScopes: imagingResourceGroupIds
    permissions: [
      {
        actions: [
          'Microsoft.Compute/virtualMachines/read' // check the builder VM's prerequisites and find its OS and data disks
          'Microsoft.Compute/disks/read' // read each disk to snapshot (size, OS type, encryption)
          'Microsoft.Compute/disks/beginGetAccess/action' // snapshot copy from a disk, and Batch reads the image lineage through it
          'Microsoft.Compute/snapshots/read' // follow snapshot progress (completionPercent) and re-read on events
          'Microsoft.Compute/snapshots/write' // create the OS and data disk snapshots
          'Microsoft.Compute/snapshots/delete' // remove a failed request's snapshots
          'Microsoft.Compute/images/read' // re-read the managed image; a legacy-mode pool references it
          'Microsoft.Compute/images/write' // create the managed image from the snapshots
          'Microsoft.Compute/images/delete' // remove a failed request's image
          'Microsoft.Compute/galleries/read' // check the target gallery exists
          'Microsoft.Compute/galleries/images/read' // find the image definition
          'Microsoft.Compute/galleries/images/write' // create the image definition on first use
          'Microsoft.Compute/galleries/images/versions/read' // follow replication; the pool's imageReference
          'Microsoft.Compute/galleries/images/versions/write' // publish the version from the managed image
          'Microsoft.Authorization/locks/read' // see whether an image or its lineage is protected
          'Microsoft.Authorization/locks/write' // CanNotDelete lock on what a pool uses
          'Microsoft.Authorization/locks/delete' // release the lock when no pool uses it any more
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

// Every action, and why. Assigned only on each Batch account in batchAccountIds.
resource batchRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'pool-batch')
  properties: {
    roleName: 'Custom image pools Batch (${environmentName}-${resourceToken})'
    description: 'What the custom-image pool automation does in the allowed Batch accounts: create pools from the published image, keep them resizing to target.'
    type: 'CustomRole'
    assignableScopes: union(batchAccountResourceGroupIds, [])
    permissions: [
      {
        actions: [
          'Microsoft.Batch/batchAccounts/read' // the account exists, its quotas (checked before creating a pool)
          'Microsoft.Batch/batchAccounts/pools/read' // pool state for the guard: allocation state, node counts, resize errors
          'Microsoft.Batch/batchAccounts/pools/write' // create the pool; PATCH scaleSettings to resize
          'Microsoft.Batch/batchAccounts/pools/delete' // remove a pool a failed request created
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

module imagingAccess 'access/imaging-access.bicep' = [for (id, i) in imagingResourceGroupIds: {
  name: 'imaging-access-${i}'
  scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
  params: {
    roleDefinitionId: imagingRole.id
    principalId: identities.outputs.appPrincipalId
  }
}]

module batchAccess 'access/batch-access.bicep' = [for (id, i) in batchAccountIds: {
  name: 'batch-access-${i}'
  scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
  params: {
    batchAccountName: last(split(id, '/'))
    roleDefinitionId: batchRole.id
    principalId: identities.outputs.appPrincipalId
  }
}]

module galleryCheck 'access/gallery-check.bicep' = [for (id, i) in galleryIds: {
  name: 'gallery-check-${i}'
  scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
  params: {
    galleryName: last(split(id, '/'))
  }
}]

// -- ARM events -----------------------------------------------------------------------

module resourceGroupTopics 'events/system-topic.bicep' = [for (id, i) in (watchScope == 'resourceGroups' ? watchedResourceGroupIds : []): {
  name: 'events-rg-${i}'
  scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
  params: {
    name: 'evgt-${resourceToken}-${uniqueString(id)}'
    source: id
    topicType: 'Microsoft.Resources.ResourceGroups'
    identityId: identities.outputs.eventGridIdentityId
    tags: tags
  }
}]

module subscriptionTopic 'events/system-topic.bicep' = if (watchScope == 'subscription') {
  name: 'events-subscription'
  scope: rg
  params: {
    name: subscriptionTopicName
    source: subscription().id
    topicType: 'Microsoft.Resources.Subscriptions'
    identityId: identities.outputs.eventGridIdentityId
    tags: tags
  }
}

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
output EVENTGRID_SYSTEM_TOPIC_IDS string = join(watchScope == 'subscription' ? [subscriptionTopicId] : resourceGroupTopicIds, ',')
output EVENTGRID_DEADLETTER_STORAGE_ID string = storage.outputs.id
output EVENTGRID_DEADLETTER_CONTAINER string = storage.outputs.deadLetterContainerName
output EVENTGRID_IDENTITY_ID string = identities.outputs.eventGridIdentityId
