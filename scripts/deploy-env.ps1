# What azd's hooks run on Windows (scripts/bootstrap --deploy and the .sh hooks are the POSIX twins): .venv with
# requirements-deploy.txt, pinned by constraints.txt (only what is missing or changed), then
# python -m cli deploy <step> --subscription $env:AZURE_SUBSCRIPTION_ID. No JSON passes through a shell or az.cmd.
param([Parameter(Mandatory)][ValidateSet('prepare', 'subscribe')][string]$Step)
$ErrorActionPreference = 'Stop'
if (-not $env:AZURE_SUBSCRIPTION_ID) { throw 'azd sets AZURE_SUBSCRIPTION_ID; run azd env refresh or azd env set AZURE_SUBSCRIPTION_ID <id>' }
$root = Split-Path -Parent $PSScriptRoot
$python = Join-Path $root '.venv/Scripts/python.exe'
if (-not (Test-Path $python)) {
    & python -m venv (Join-Path $root '.venv')
    if ($LASTEXITCODE -ne 0) { throw 'python -m venv failed: install Python 3.11 (README: Deploying to Azure)' }
}
$stamp = Join-Path $root '.venv/.deploy-installed'
$inputs = 'requirements.txt', 'requirements-deploy.txt', 'requirements-cli.txt', 'constraints.txt' | ForEach-Object { Join-Path $root $_ }
$stale = -not (Test-Path $stamp) -or @($inputs | Where-Object { (Get-Item $_).LastWriteTime -gt (Get-Item $stamp).LastWriteTime }).Count -gt 0
if ($stale) {
    & $python -m pip install --quiet --disable-pip-version-check -r (Join-Path $root 'requirements-deploy.txt') -c (Join-Path $root 'constraints.txt')
    if ($LASTEXITCODE -ne 0) { throw 'installing requirements-deploy.txt failed' }
    New-Item -ItemType File -Force $stamp | Out-Null
}
Push-Location $root
try {
    & $python -m cli deploy $Step --subscription $env:AZURE_SUBSCRIPTION_ID
    if ($LASTEXITCODE -ne 0) { throw "python -m cli deploy $Step failed (its message above says why and how to fix it)" }
} finally { Pop-Location }
