// Alerts: a custom topic taking CloudEvents 1.0 (shared/alerts.py publishes
// there with the function's identity), delivered to a Service Bus queue; and
// each alert mailed to ops with its content by log search alert rules on the
// alert's log line in Application Insights (docs/operations.md: what ops receive).
param location string
param tags object
param resourceToken string
param appPrincipalId string
param eventGridIdentityId string
param alertsQueueId string
param alertEmail string
@description('Application Insights of the Function App: where the alert log lines are.')
param applicationInsightsId string

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

// One log search alert rule per alert severity (Azure's own severity to match: critical 0, error 1, warning 2) over
// the alert log lines (alert-lines.kql). Each row's type, severity, resource, pools at risk, details and runbook
// are the rule's dimensions ("up to six", alerts-create-log-alert-rule), so every alert fires on its own and
// the e-mail (common alert schema) carries them. Stateless (autoMitigate false): each alert is mailed once,
// when its line first lands in a 5-minute window; Azure retries an evaluation for late-ingested logs
// (alerts-troubleshoot-log, "To mitigate latency, the system retries the alert evaluation").
var alertLinesQuery = loadTextContent('alert-lines.kql')
var ruleSeverities = [
  { name: 'critical', azureSeverity: 0 }
  { name: 'error', azureSeverity: 1 }
  { name: 'warning', azureSeverity: 2 }
]

resource alertMails 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for rule in ruleSeverities: {
  name: 'pool-alert-${rule.name}-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Custom-image pools: ${rule.name} alert'
    description: 'An alert of the custom-image pool automation (severity ${rule.name}); the dimensions say which, about what, the pools at risk and the runbook.'
    severity: rule.azureSeverity
    enabled: true
    scopes: [ applicationInsightsId ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: alertLinesQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            { name: 'severity', operator: 'Include', values: [ rule.name ] }
            { name: 'type', operator: 'Include', values: [ '*' ] }
            { name: 'resource', operator: 'Include', values: [ '*' ] }
            { name: 'poolsAtRisk', operator: 'Include', values: [ '*' ] }
            { name: 'details', operator: 'Include', values: [ '*' ] }
            { name: 'runbook', operator: 'Include', values: [ '*' ] }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    actions: {
      actionGroups: [ opsActionGroup.id ]
    }
  }
}]

output topicEndpoint string = topic.properties.endpoint
output topicId string = topic.id
