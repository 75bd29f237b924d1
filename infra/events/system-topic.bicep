// One Event Grid system topic for a watched scope (a resource group or a
// subscription). Its event subscription to `resource_events` is created by the
// postdeploy hook (python -m cli deploy subscribe, cli/deploy/events.py) once the function exists;
// the topic carries the Event Grid identity that subscription dead-letters with.
// create=false: the source has a topic already (reused, Azure allows one per source) or this
// resource group carries no topic; nothing is deployed and the id output is empty.
param create bool = true
param name string
param source string
@allowed([
  'Microsoft.Resources.ResourceGroups'
  'Microsoft.Resources.Subscriptions'
])
param topicType string
param identityId string
param tags object

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' = if (create) {
  name: name
  location: 'global'
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    source: source
    topicType: topicType
  }
}

output id string = create ? topic.id : ''
