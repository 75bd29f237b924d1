# azd postdeploy hook (Windows, PowerShell 7): the same step as postdeploy.sh, in Python with the Azure SDKs.
& (Join-Path $PSScriptRoot 'deploy-env.ps1') -Step subscribe
