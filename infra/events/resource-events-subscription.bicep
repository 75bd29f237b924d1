// The event subscription of one system topic to the `resource_events` function.
// Deployed by scripts/postdeploy.sh after `azd deploy`: Event Grid checks that an
// Azure Function endpoint exists when the subscription is created.
@minLength(1)
@description('Name of the system topic (in this resource group).')
param systemTopicName string

@minLength(1)
@description('Resource id of the Function App.')
param functionAppId string

@minLength(1)
@description('Storage account receiving dead-lettered events.')
param deadLetterStorageId string

@minLength(3)
param deadLetterContainerName string

@minLength(1)
@description('User-assigned identity Event Grid delivers and dead-letters with (attached to the topic).')
param eventGridIdentityId string

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: systemTopicName
}

resource toResourceEvents 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: topic
  name: 'resource-events-to-function'
  properties: {
    // azure.functions 1.x decodes the Event Grid schema (design notes).
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/resource_events'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      // The events the handlers act on (shared/arm_events.py); Cancel and Action events are not used.
      includedEventTypes: [
        'Microsoft.Resources.ResourceWriteSuccess'
        'Microsoft.Resources.ResourceWriteFailure'
        'Microsoft.Resources.ResourceDeleteSuccess'
        'Microsoft.Resources.ResourceDeleteFailure'
      ]
      // subjectBeginsWith takes one prefix and a subject starts with the
      // subscription and resource group, so the resource types are matched
      // with an advanced filter on the subject instead.
      advancedFilters: [
        {
          operatorType: 'StringContains'
          key: 'subject'
          values: [
            '/providers/Microsoft.Compute/snapshots/'
            '/providers/Microsoft.Compute/images/'
            '/providers/Microsoft.Compute/galleries/'
            '/providers/Microsoft.Batch/batchAccounts/'
            '/providers/Microsoft.Authorization/locks/'
          ]
        }
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'UserAssigned'
        userAssignedIdentity: eventGridIdentityId
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output id string = toResourceEvents.id
