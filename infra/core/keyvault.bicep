// Key Vault for the one secret the app holds: the key that signs the retry properties of a request it
// sends back to its own queue (MESSAGE_SIGNING_KEY, read through a Key Vault reference). RBAC only.
param location string
param tags object
param resourceToken string
param appPrincipalId string
@secure()
@description('The signing key (a new random value on every provision: a retry signed with the old key then counts as a first attempt).')
param messageSigningKey string

var roles = {
  // Key Vault Secrets User: read secret contents (learn.microsoft.com/azure/key-vault/general/rbac-guide).
  secretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
}

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' = {
  // checkov:skip=CKV_AZURE_109: Flex Consumption without VNet integration resolves Key Vault references over the public endpoint; only Entra identities with a data role read it
  // checkov:skip=CKV_AZURE_189: same as CKV_AZURE_109
  // checkov:skip=CKV_AZURE_110: purge protection would keep the vault's name taken for 90 days after azd down (a new azd up of the same environment would fail); the only secret is regenerated on every provision, so nothing is lost with the vault
  // checkov:skip=CKV_AZURE_42: soft delete stays on (the default); see CKV_AZURE_110 for purge protection
  name: 'kv-${resourceToken}'
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    publicNetworkAccess: 'Enabled'
  }
}

resource signingKey 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = {
  // checkov:skip=CKV_AZURE_41: the key is replaced on every provision; an expiry would only stop the app signing between provisions
  parent: vault
  name: 'message-signing-key'
  properties: {
    value: messageSigningKey
    contentType: 'text/plain'
  }
}

resource appReadsSigningKey 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(signingKey.id, appPrincipalId, roles.secretsUser)
  scope: signingKey
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.secretsUser)
  }
}

output id string = vault.id
// Versionless: the app reads the latest version, so a new provision's key is picked up.
output messageSigningKeyReference string = '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/${signingKey.name})'
