<#
.SYNOPSIS
    Undo install-node.ps1: remove exactly what it added, as recorded in
    %ProgramData%\wslq\install-state.json. Run elevated. -WhatIf shows what would be removed.

.DESCRIPTION
    * .wslconfig: keys the install added are removed; keys it changed get their previous value
      back. Everything else in the file stays as it is.
    * Firewall: the Hyper-V and Windows Firewall rules it created (by recorded name).
    * Power: the AC sleep/hibernate timeouts it found before.
    * The scheduled task it registered, and portproxy entries it added (NAT fallback).
    Nothing that existed before the install is touched. The state file is deleted at the end.

.EXAMPLE
    .\uninstall-node.ps1 -WhatIf
    .\uninstall-node.ps1
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param()

Set-StrictMode -Version 3
$ErrorActionPreference = "Stop"

$StateDir = Join-Path $env:ProgramData "wslq"
$StateFile = Join-Path $StateDir "install-state.json"

if (-not (Test-Path $StateFile)) {
    Write-Host "nothing to undo: $StateFile not found"
    exit 0
}
$s = Get-Content $StateFile -Raw | ConvertFrom-Json

# ---- .wslconfig ------------------------------------------------------------------------------
if ($s.WslConfigPath -and (Test-Path $s.WslConfigPath)) {
    $path = $s.WslConfigPath
    $lines = [System.Collections.Generic.List[string]]@(Get-Content $path)
    foreach ($k in @($s.WslConfig | Where-Object { $_ })) {
        $section = ""
        for ($i = 0; $i -lt $lines.Count; $i++) {
            $t = $lines[$i].Trim()
            if ($t -match '^\[(.+)\]$') { $section = $Matches[1].Trim(); continue }
            if ($section -ieq $k.Section -and $t -match '^([^=#;]+?)\s*=' -and $Matches[1] -ieq $k.Key) {
                if ($null -eq $k.Previous) {
                    if ($PSCmdlet.ShouldProcess($path, "remove [$($k.Section)] $($k.Key)")) { $lines.RemoveAt($i) }
                } elseif ($PSCmdlet.ShouldProcess($path, "restore [$($k.Section)] $($k.Key)=$($k.Previous)")) {
                    $lines[$i] = "$($k.Key)=$($k.Previous)"
                }
                break
            }
        }
    }
    # Drop section headers the install created, once they hold no keys.
    foreach ($sec in @($s.WslSections | Where-Object { $_ })) {
        for ($i = 0; $i -lt $lines.Count; $i++) {
            if ($lines[$i].Trim() -ine "[$sec]") { continue }
            $j = $i + 1
            while ($j -lt $lines.Count -and $lines[$j].Trim() -eq "") { $j++ }
            if ($j -ge $lines.Count -or $lines[$j].Trim() -match '^\[') {
                if ($PSCmdlet.ShouldProcess($path, "remove empty [$sec]")) {
                    $lines.RemoveAt($i)
                    if ($i -gt 0 -and $lines[$i - 1].Trim() -eq "") { $lines.RemoveAt($i - 1) }
                }
            }
            break
        }
    }
    if (-not $WhatIfPreference) {
        [System.IO.File]::WriteAllLines($path, $lines, (New-Object System.Text.UTF8Encoding($false)))
        Write-Host ".wslconfig restored; run 'wsl --shutdown' to apply"
    }
}

# ---- firewall --------------------------------------------------------------------------------
foreach ($name in @($s.HyperVRules | Where-Object { $_ })) {
    if ((Get-NetFirewallHyperVRule -Name $name -ErrorAction SilentlyContinue) -and $PSCmdlet.ShouldProcess($name, "Remove-NetFirewallHyperVRule")) {
        Remove-NetFirewallHyperVRule -Name $name
    }
}
foreach ($name in @($s.FirewallRules | Where-Object { $_ })) {
    if ((Get-NetFirewallRule -Name $name -ErrorAction SilentlyContinue) -and $PSCmdlet.ShouldProcess($name, "Remove-NetFirewallRule")) {
        Remove-NetFirewallRule -Name $name
    }
}

# ---- power -----------------------------------------------------------------------------------
if ($s.Power -and $PSCmdlet.ShouldProcess("power scheme", "standby-timeout-ac $($s.Power.StandbyAc), hibernate-timeout-ac $($s.Power.HibernateAc)")) {
    if ($null -ne $s.Power.StandbyAc) { & powercfg.exe /change standby-timeout-ac $s.Power.StandbyAc }
    if ($null -ne $s.Power.HibernateAc) { & powercfg.exe /change hibernate-timeout-ac $s.Power.HibernateAc }
}

# ---- task and portproxy ----------------------------------------------------------------------
if ($s.Task -and (Get-ScheduledTask -TaskName $s.Task -ErrorAction SilentlyContinue) -and $PSCmdlet.ShouldProcess($s.Task, "Unregister-ScheduledTask")) {
    Unregister-ScheduledTask -TaskName $s.Task -Confirm:$false
}
if ($s.PSObject.Properties['OwnerTask'] -and $s.OwnerTask -and (Get-ScheduledTask -TaskName $s.OwnerTask -ErrorAction SilentlyContinue) -and $PSCmdlet.ShouldProcess($s.OwnerTask, "Unregister-ScheduledTask")) {
    Unregister-ScheduledTask -TaskName $s.OwnerTask -Confirm:$false
}
foreach ($p in @($s.PortProxy | Where-Object { $_ })) {
    if ($PSCmdlet.ShouldProcess("0.0.0.0:$p", "netsh portproxy delete")) {
        & netsh.exe interface portproxy delete v4tov4 listenport=$p listenaddress=0.0.0.0 | Out-Null
    }
}

if (-not $WhatIfPreference) {
    Remove-Item $StateFile
    $copy = Join-Path $StateDir "install-node.ps1"
    if (Test-Path $copy) { Remove-Item $copy }
    foreach ($f in @("wslq-owner.ps1", "owner.json", "owner.json.tmp")) {
        $path = Join-Path $StateDir $f
        if (Test-Path $path) { Remove-Item $path }
    }
    Write-Host "uninstalled"
}
