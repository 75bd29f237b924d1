// The two least-privilege custom roles: exactly the actions the code performs, each with why.
// tests/infra/test_roles_match_operations.py compares them with the calls the Function App's
// identity makes across every scenario the tests run (an action never used, or a call not
// granted, fails it). The identity can create and lock what a pool uses, never delete it:
// no snapshots/delete, images/delete, galleries/images/versions/delete or pools/delete.
// The guard's fleet-wide lineage check is a Resource Graph query: it needs no action of its own, only read
// access to the resources it returns ("Permissions in Azure Resource Graph", Resource Graph overview), which
// the */read actions below already give on the imaging resource groups.
//
// Deployed twice on purpose: by scripts/preprovision (sh and ps1), which waits until both
// definitions can be read, and by main.bicep (same names and content: a no-op update). A role
// definition takes time to replicate, and an assignment made before it has fails with
// RoleDefinitionDoesNotExist; deploying the roles ahead makes the first `azd up` succeed.
targetScope = 'subscription'

@minLength(1)
param environmentName string
@description('Region of the app; with the environment name it makes the same resource token as main.bicep.')
param location string
@minLength(1)
param imagingResourceGroupIds array
@minLength(1)
param batchAccountIds array

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var batchSubscriptionIds = [for id in batchAccountIds: '/subscriptions/${split(id, '/')[2]}']
var imagingSubscriptionIds = [for id in imagingResourceGroupIds: '/subscriptions/${split(id, '/')[2]}']

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
          'Microsoft.Compute/virtualMachines/read' // the builder VM: location, OS and data disks, prerequisites
          // A snapshot PUT with creationData.sourceResourceId = a managed disk is also checked on the
          // disk: without this ARM answers 403 LinkedAuthorizationFailed naming
          // 'Microsoft.Compute/disks/beginGetAccess/action' on the linked scope (the disk).
          'Microsoft.Compute/disks/beginGetAccess/action'
          'Microsoft.Compute/snapshots/read' // re-read a snapshot on its event (state, OS type); lineage checks (also what a Resource Graph query needs to see it)
          'Microsoft.Compute/snapshots/write' // create the OS and data disk snapshots
          'Microsoft.Compute/galleries/read' // the request's gallery exists (checked before anything is created)
          'Microsoft.Compute/images/read' // re-read the managed image on its event; lineage checks (point reads and Resource Graph); the version's source
          'Microsoft.Compute/images/write' // create the managed image from the snapshots
          'Microsoft.Compute/galleries/images/read' // find the image definition before creating it
          'Microsoft.Compute/galleries/images/write' // create the image definition on first use
          'Microsoft.Compute/galleries/images/versions/read' // follow replication; the pool's imageReference is checked on it; lineage checks (Resource Graph)
          'Microsoft.Compute/galleries/images/versions/write' // publish the version from the managed image
          'Microsoft.Authorization/locks/read' // whether an image or its lineage is already protected
          'Microsoft.Authorization/locks/write' // the CanNotDelete lock cip-protect on what a pool uses
          'Microsoft.Authorization/locks/delete' // release our lock when the last pool using the resource is gone
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
    // A Batch account is a valid assignable scope only through its resource group.
    assignableScopes: [for id in batchAccountIds: substring(id, 0, indexOf(toLower(id), '/providers/microsoft.batch/'))]
    permissions: [
      {
        actions: [
          'Microsoft.Batch/batchAccounts/read' // the account's region and core quotas, checked before a pool is created
          'Microsoft.Batch/batchAccounts/pools/read' // pool state for the guard: allocation state, node counts, resize errors
          'Microsoft.Batch/batchAccounts/pools/write' // create the pool; PATCH scaleSettings to resize
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

// The VM sizes Batch supports in the account's region (cores per node for the quota check) are read
// at subscription scope (GET /subscriptions/{id}/providers/Microsoft.Batch/locations/{region}/virtualMachineSkus),
// which an assignment on the account does not cover: this one-action role is assigned on each
// subscription holding a Batch account.
resource batchSkusRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'pool-batch-skus')
  properties: {
    roleName: 'Custom image pools Batch VM sizes (${environmentName}-${resourceToken})'
    description: 'Read the VM sizes Azure Batch supports in a region (the custom-image pool automation checks a pool\'s cores against the account quota).'
    type: 'CustomRole'
    assignableScopes: union(batchSubscriptionIds, [])
    permissions: [
      {
        actions: [
          'Microsoft.Batch/locations/virtualMachineSkus/read' // cores per node of the pool's VM size, for the quota check
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

// Where a probe has not shown that ARM raises events for a deleted lock or a refused delete
// (python -m cli verify --probe-events), the guard's sweep looks for them itself: two reads at
// subscription scope, assigned on each subscription holding an imaging resource group.
resource protectionAuditRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'pool-protection-audit')
  properties: {
    roleName: 'Custom image pools protection audit (${environmentName}-${resourceToken})'
    description: 'Read management locks and the Activity Log (the custom-image pool automation checks that what pools use is still locked, and finds refused deletes).'
    type: 'CustomRole'
    assignableScopes: union(imagingSubscriptionIds, [])
    permissions: [
      {
        actions: [
          // ManagementLocks_ListAtSubscriptionLevel: one paged list finds every removed cip-protect lock
          'Microsoft.Authorization/locks/read'
          // ActivityLogs_List (GET /subscriptions/{id}/providers/Microsoft.Insights/eventtypes/management/values): refused deletes
          'Microsoft.Insights/eventtypes/values/read'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

output imagingRoleId string = imagingRole.id
output protectionAuditRoleId string = protectionAuditRole.id
output batchSkusRoleId string = batchSkusRole.id
output batchRoleId string = batchRole.id
output imagingRoleName string = imagingRole.properties.roleName
output batchRoleName string = batchRole.properties.roleName
