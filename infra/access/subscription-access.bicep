// A role on a whole subscription: the Batch VM sizes role and the protection audit role (two reads) are assigned this way.
targetScope = 'subscription'

param roleDefinitionId string
param principalId string

// principalType avoids the failure on a just-created identity that Entra has not replicated yet
// ("Assign Azure roles using Azure Resource Manager templates", new service principal section:
// https://learn.microsoft.com/azure/role-based-access-control/role-assignments-template#new-service-principal).
resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, roleDefinitionId)
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
