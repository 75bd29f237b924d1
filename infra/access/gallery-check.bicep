// Fails the deployment, naming the gallery, when a listed gallery does not exist.
@minLength(1)
@maxLength(80)
param galleryName string

resource gallery 'Microsoft.Compute/galleries@2023-07-03' existing = {
  name: galleryName
}

output id string = gallery.id
output state string = gallery.properties.provisioningState
