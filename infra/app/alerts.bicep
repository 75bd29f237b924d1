// Alerts: a custom topic taking CloudEvents 1.0 (shared/alerts.py publishes
// there with the function's identity), delivered to a Service Bus queue, and a
// metric alert that mails ops through an action group whenever alerts flow.
param location string
param tags object
param resourceToken string
param appPrincipalId string
param eventGridIdentityId string
param alertsQueueId string
param alertEmail string

var eventGridDataSender = 'd5a91429-5739-47e2-a06b-3470a27159e7'

resource topic 'Microsoft.EventGrid/topics@2025-02-15' = {
  // checkov:skip=CKV_AZURE_193: the function publishes over the public endpoint (no VNet integration); local auth is off, only identities with EventGrid Data Sender can publish
  name: 'evgt-alerts-${resourceToken}'
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${eventGridIdentityId}': {} }
  }
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    minimumTlsVersionAllowed: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource publish 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, appPrincipalId, eventGridDataSender)
  scope: topic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSender)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Example subscription: every alert to the ops queue, delivered with Event
// Grid's own identity (no SAS key). Add subscriptions for webhooks, Logic Apps
// or Teams the same way.
resource toQueue 'Microsoft.EventGrid/topics/eventSubscriptions@2025-02-15' = {
  parent: topic
  name: 'alerts-to-ops-queue'
  properties: {
    eventDeliverySchema: 'CloudEventSchemaV1_0'
    deliveryWithResourceIdentity: {
      identity: {
        type: 'UserAssigned'
        userAssignedIdentity: eventGridIdentityId
      }
      destination: {
        endpointType: 'ServiceBusQueue'
        properties: { resourceId: alertsQueueId }
      }
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}

resource opsActionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-pools-ops-${resourceToken}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'poolsops'
    enabled: true
    emailReceivers: [
      {
        name: 'ops'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// Mails ops within about five minutes of any alert being published; the
// alert's details are in the ops queue and in Application Insights traces.
resource alertsPublished 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'pool-alerts-published-${resourceToken}'
  location: 'global'
  tags: tags
  properties: {
    description: 'The custom-image pool automation published an alert (image in use being removed, request failed, pool cannot reach target).'
    severity: 2
    enabled: true
    scopes: [ topic.id ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          name: 'alerts-published'
          criterionType: 'StaticThresholdCriterion'
          metricName: 'PublishSuccessCount'
          metricNamespace: 'Microsoft.EventGrid/topics'
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Total'
        }
      ]
    }
    actions: [
      { actionGroupId: opsActionGroup.id }
    ]
  }
}

output topicEndpoint string = topic.properties.endpoint
output topicId string = topic.id
