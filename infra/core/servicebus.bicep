// Service Bus: the requests queue, the pool-checks queue, the alerts queue and
// the teams' reply queues. Local (SAS key) auth is off: identities only.
param location string
param tags object
param resourceToken string
param poolRequestsQueueName string
param poolChecksQueueName string
param teamReplyQueues array
param appPrincipalId string
param eventGridPrincipalId string
@description('The operator running azd (may be empty): sends requests from the command line.')
param operatorPrincipalId string

var roles = {
  receiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  sender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
}

resource namespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: 'sb-${resourceToken}'
  location: location
  tags: tags
  sku: { name: 'Standard', tier: 'Standard' }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

// Lock durations: a request's handler makes a few ARM calls (seconds); the
// host renews locks up to host.json maxAutoLockRenewalDuration (10 min, the function timeout). PT5M is
// the Standard tier maximum. A message failing maxDeliveryCount times is
// dead-lettered (transient errors raise, so they are redelivered first).
resource poolRequests 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: namespace
  name: poolRequestsQueueName
  properties: {
    lockDuration: 'PT5M'
    maxDeliveryCount: 5
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: 'P14D'
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT1H'
  }
}

// Checks look at one pool (one ARM read, maybe a PATCH): a short lock, more
// deliveries, because a check that fails on a throttled ARM call must come back.
resource poolChecks 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: namespace
  name: poolChecksQueueName
  properties: {
    lockDuration: 'PT1M'
    maxDeliveryCount: 10
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: 'P7D'
    // A check's MessageId names what it looks at and which look it is: the same look scheduled by several
    // deliveries of one event is kept once (learn.microsoft.com/azure/service-bus-messaging/duplicate-detection).
    // Set only when a queue is created: an existing queue without it must be deleted before azd provision.
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'P1D'
  }
}

// Alerts published to the custom topic land here too (ops tooling reads them).
resource alertsQueue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: namespace
  name: 'alerts'
  properties: {
    lockDuration: 'PT1M'
    maxDeliveryCount: 10
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: 'P14D'
  }
}

// A reply's MessageId is <requestId>-<stage>: duplicate detection drops a reply
// sent twice (a worker that died between sending it and recording it), so a team
// hears once per outcome (learn.microsoft.com/azure/service-bus-messaging/duplicate-detection).
resource replyQueues 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = [for name in teamReplyQueues: {
  parent: namespace
  name: name
  properties: {
    lockDuration: 'PT1M'
    maxDeliveryCount: 10
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: 'P14D'
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'P1D'
  }
}]

// The function receives from its two trigger queues only.
resource receiveRequests 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(poolRequests.id, appPrincipalId, roles.receiver)
  scope: poolRequests
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.receiver)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource receiveChecks 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(poolChecks.id, appPrincipalId, roles.receiver)
  scope: poolChecks
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.receiver)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The function sends to the checks queue (scheduled checks), back to the
// requests queue (a request retried later while Azure or the ledger is down),
// and to the teams' reply queues: nowhere else (REPLY_QUEUES lists the same queues).
resource sendChecks 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(poolChecks.id, appPrincipalId, roles.sender)
  scope: poolChecks
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.sender)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource sendRequestsLater 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(poolRequests.id, appPrincipalId, roles.sender)
  scope: poolRequests
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.sender)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource sendReplies 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (name, index) in teamReplyQueues: {
  name: guid(replyQueues[index].id, appPrincipalId, roles.sender)
  scope: replyQueues[index]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.sender)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

resource eventGridToAlerts 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(alertsQueue.id, eventGridPrincipalId, roles.sender)
  scope: alertsQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.sender)
    principalId: eventGridPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource operatorSendsRequests 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(poolRequests.id, operatorPrincipalId, roles.sender)
  scope: poolRequests
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.sender)
    principalId: operatorPrincipalId
  }
}

// serviceBusEndpoint is https://<name>.servicebus.<cloud suffix>:443/; the bindings want the host only.
output fullyQualifiedNamespace string = split(split(namespace.properties.serviceBusEndpoint, '//')[1], ':')[0]
output alertsQueueId string = alertsQueue.id
output id string = namespace.id
