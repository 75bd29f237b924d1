# azd preprovision hook (Windows, PowerShell 7): the same step as preprovision.sh. The Azure work (the custom roles,
# waiting for them by id, the existing system topics) runs in Python with the Azure SDKs, in azd's subscription.
& (Join-Path $PSScriptRoot 'deploy-env.ps1') -Step prepare
