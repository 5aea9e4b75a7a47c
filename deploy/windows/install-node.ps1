<#
.SYNOPSIS
    Prepare a Windows lab PC to host a wslq node inside WSL 2. Run once, elevated; safe to re-run.

.DESCRIPTION
    Steps (each skipped when already done; every change is recorded in the state file so
    uninstall-node.ps1 can remove exactly what this script added):
      1. Host checks: Windows build and edition (mirrored networking needs Windows 11 22H2+,
         build 22621, client edition), WSL version, NVIDIA driver and GPU driver model (WDDM),
         virtualization.
      2. %UserProfile%\.wslconfig of the account that runs WSL: merges keys, never rewrites the
         file. Required keys ([wsl2] networkingMode=mirrored, vmIdleTimeout=-1,
         [general] instanceIdleTimeout=-1) are set and the previous value is recorded;
         sizing keys (memory, swap) are only added when absent.
      3. Firewall: inbound TCP from the lab subnet only, for the wslq ports (7420 control,
         7421 HTTP) and the job/NCCL port range (default 1024-65535, because WSL's ephemeral
         block moves between boots). Hyper-V firewall rules (WSL's VMCreatorId) plus matching
         Windows Firewall rules.
      4. Power: no sleep and no hibernate on AC power.
      5. Scheduled task "wslq-start-distro": at logon of the WSL account, starts the distro
         (systemd then starts wslq-worker). Lab PCs should auto-logon that account.
      6. NAT fallback (Windows 10 / Windows Server, where mirrored mode does not exist): the
         node takes single-node jobs only; with -SchedulerHere the wslq ports are forwarded
         to WSL with netsh portproxy, refreshed at each logon (the WSL IP changes per boot).

    Dry run: -WhatIf prints every change without making it (standard PowerShell
    ShouldProcess). Read-only report: -Check (exit code 0 = ready, 1 = something missing).

.EXAMPLE
    .\install-node.ps1 -LabSubnet 192.168.10.0/24 -WhatIf
    .\install-node.ps1 -LabSubnet 192.168.10.0/24 -User labnode -MemoryGB 48
    .\install-node.ps1 -Check
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param(
    # Lab subnet allowed inbound, e.g. 192.168.10.0/24 (comma-separate several).
    [string]$LabSubnet = "",
    # The Windows account that runs WSL (its .wslconfig, its logon task).
    [string]$User = $env:USERNAME,
    [string]$Distro = "Ubuntu",
    # [wsl2] memory / swap in GB; 0 = leave WSL's default (50 % of RAM / 25 %).
    [int]$MemoryGB = 0,
    [int]$SwapGB = 0,
    [int[]]$WslqPorts = @(7420, 7421),
    [string]$JobPorts = "1024-65535",
    # The scheduler runs in this PC's WSL too: adds [experimental] hostAddressLoopback=true
    # (mirrored) or portproxy rules (NAT).
    [switch]$SchedulerHere,
    [switch]$Check,
    # Internal: re-point portproxy rules at the current WSL IP (run by the logon task).
    [switch]$RefreshPortProxy
)

Set-StrictMode -Version 3
$ErrorActionPreference = "Stop"
$env:WSL_UTF8 = "1"   # wsl.exe prints UTF-16 otherwise

$StateDir = Join-Path $env:ProgramData "wslq"
$StateFile = Join-Path $StateDir "install-state.json"
$WslVmCreatorId = "{40E0AC32-46A5-438A-A0B2-2B479E8F2E90}"   # Get-NetFirewallHyperVVMCreator
$TaskName = "wslq-start-distro"
$OwnerTaskName = "wslq-owner-reporter"
$MirroredMinBuild = 22621

function Write-Step($msg) { Write-Host "==> $msg" }
function Write-Ok($msg) { Write-Host "    ok: $msg" }
function Write-Miss($msg) { Write-Host "    MISSING: $msg" -ForegroundColor Yellow; $script:Missing++ }
$script:Missing = 0

# ---- state file: what this script added, for uninstall-node.ps1 -----------------------------
function Get-State {
    if (Test-Path $StateFile) {
        $s = Get-Content $StateFile -Raw | ConvertFrom-Json
        # JSON arrays of one element come back as scalars; normalise.
        return @{
            WslConfig    = @($s.WslConfig | Where-Object { $_ })
            FirewallRules = @($s.FirewallRules | Where-Object { $_ })
            HyperVRules  = @($s.HyperVRules | Where-Object { $_ })
            Task         = $s.Task
            OwnerTask    = $(if ($s.PSObject.Properties['OwnerTask']) { $s.OwnerTask } else { $null })
            Power        = $s.Power
            PortProxy    = @($s.PortProxy | Where-Object { $_ })
            WslSections  = @($s.WslSections | Where-Object { $_ })
            WslConfigPath = $s.WslConfigPath
            Distro       = $s.Distro
        }
    }
    return @{ WslConfig = @(); WslSections = @(); FirewallRules = @(); HyperVRules = @(); Task = $null; OwnerTask = $null; Power = $null;
              PortProxy = @(); WslConfigPath = $null; Distro = $null }
}

function Save-State($state) {
    if ($WhatIfPreference) { return }
    New-Item -ItemType Directory -Force -Path $StateDir | Out-Null
    $state | ConvertTo-Json -Depth 5 | Set-Content -Path $StateFile -Encoding UTF8
}

# ---- 1. host checks --------------------------------------------------------------------------
function Get-HostFacts {
    $os = Get-CimInstance Win32_OperatingSystem
    $build = [int]$os.BuildNumber
    $client = ($os.ProductType -eq 1)          # 1 workstation, 2 DC, 3 server
    $facts = [ordered]@{
        Caption         = $os.Caption
        Build           = $build
        Client          = $client
        MirroredPossible = ($client -and $build -ge $MirroredMinBuild)
        WslVersion      = $null
        Gpus            = @()
        Virtualization  = $null
    }
    try {
        $v = & wsl.exe --version 2>$null | Select-Object -First 1
        if ($v -match '([0-9]+\.[0-9]+\.[0-9]+(\.[0-9]+)?)') { $facts.WslVersion = $Matches[1] }
    } catch { }
    $smi = Join-Path $env:SystemRoot "System32\nvidia-smi.exe"
    if (Test-Path $smi) {
        try {
            $facts.Gpus = @(& $smi --query-gpu=name,driver_version,driver_model.current --format=csv,noheader 2>$null)
        } catch { }
    }
    $cs = Get-CimInstance Win32_ComputerSystem
    $facts.Virtualization = [bool]$cs.HypervisorPresent
    return $facts
}

function Show-HostFacts($f) {
    Write-Step "Host"
    Write-Host "    $($f.Caption), build $($f.Build)"
    if ($f.MirroredPossible) { Write-Ok "mirrored networking possible (client edition, build >= $MirroredMinBuild)" }
    else { Write-Host "    NAT only (Windows 10 or Server): this node takes single-node jobs only" -ForegroundColor Yellow }
    if ($f.WslVersion) {
        if ([version]$f.WslVersion -lt [version]"2.0.0") { Write-Miss "WSL $($f.WslVersion) < 2.0: run 'wsl --update'" }
        else { Write-Ok "WSL $($f.WslVersion)" }
    } else { Write-Miss "WSL not installed or too old for 'wsl --version': run 'wsl --install' / 'wsl --update'" }
    if ($f.Gpus.Count -eq 0) { Write-Miss "no NVIDIA GPU/driver found (nvidia-smi.exe): install the NVIDIA Windows driver (R495+)" }
    foreach ($g in $f.Gpus) {
        if ($g -match 'WDDM') { Write-Ok "GPU $g" }
        else { Write-Miss "GPU $g is not in WDDM mode: WSL cannot see TCC GPUs (nvidia-smi -dm 0 as admin)" }
    }
    if ($f.Virtualization) { Write-Ok "hypervisor present" } else { Write-Miss "virtualization disabled in firmware or Virtual Machine Platform off" }
}

# ---- 2. .wslconfig merge ---------------------------------------------------------------------
function Get-WslConfigPath {
    $profileDir = Join-Path (Join-Path $env:SystemDrive "Users") $User
    return Join-Path $profileDir ".wslconfig"
}

# Read an INI file into a list of lines (keeps comments and order).
function Read-Lines($path) {
    if (Test-Path $path) { return [System.Collections.Generic.List[string]]@(Get-Content $path) }
    return [System.Collections.Generic.List[string]]::new()
}

# Find key in [section]: returns @{ Index; Value } or $null; SectionEnd = where to insert.
function Find-Key($lines, $section, $key) {
    $in = $false; $secStart = -1; $secEnd = -1; $found = $null
    for ($i = 0; $i -lt $lines.Count; $i++) {
        $t = $lines[$i].Trim()
        if ($t -match '^\[(.+)\]$') {
            if ($in) { $secEnd = $i }
            $in = ($Matches[1].Trim() -ieq $section)
            if ($in) { $secStart = $i; $secEnd = -1 }
            continue
        }
        if ($in -and $t -match '^([^=#;]+?)\s*=\s*(.*?)\s*(#.*)?$' -and $Matches[1] -ieq $key) {
            $found = @{ Index = $i; Value = $Matches[2] }
        }
    }
    if ($in -and $secEnd -lt 0) { $secEnd = $lines.Count }
    return @{ Found = $found; SectionStart = $secStart; SectionEnd = $secEnd }
}

# Desired keys: Required ones are set (previous value recorded); the others only added.
function Get-DesiredKeys($facts) {
    $keys = @()
    if ($facts.MirroredPossible) {
        $keys += @{ Section = "wsl2"; Key = "networkingMode"; Value = "mirrored"; Required = $true }
        if ($SchedulerHere) { $keys += @{ Section = "experimental"; Key = "hostAddressLoopback"; Value = "true"; Required = $true } }
    }
    $keys += @{ Section = "wsl2"; Key = "vmIdleTimeout"; Value = "-1"; Required = $true }
    $keys += @{ Section = "general"; Key = "instanceIdleTimeout"; Value = "-1"; Required = $true }
    if ($MemoryGB -gt 0) { $keys += @{ Section = "wsl2"; Key = "memory"; Value = "${MemoryGB}GB"; Required = $false } }
    if ($SwapGB -gt 0) { $keys += @{ Section = "wsl2"; Key = "swap"; Value = "${SwapGB}GB"; Required = $false } }
    return $keys
}

function Merge-WslConfig($facts, $state, [switch]$ReadOnly) {
    $path = Get-WslConfigPath
    Write-Step ".wslconfig ($path)"
    $lines = Read-Lines $path
    $changed = $false
    foreach ($k in (Get-DesiredKeys $facts)) {
        $r = Find-Key $lines $k.Section $k.Key
        $label = "[$($k.Section)] $($k.Key)=$($k.Value)"
        if ($r.Found -and $r.Found.Value -ieq $k.Value) { Write-Ok $label; continue }
        if ($r.Found -and -not $k.Required) { Write-Ok "[$($k.Section)] $($k.Key)=$($r.Found.Value) (kept, yours)"; continue }
        if ($ReadOnly) { Write-Miss $label; continue }
        if (-not $PSCmdlet.ShouldProcess($path, "set $label")) { continue }
        if ($r.Found) {
            $lines[$r.Found.Index] = "$($k.Key)=$($k.Value)"
            $state.WslConfig += @{ Section = $k.Section; Key = $k.Key; Previous = $r.Found.Value }
        } elseif ($r.SectionStart -ge 0) {
            $lines.Insert($r.SectionEnd, "$($k.Key)=$($k.Value)")
            $state.WslConfig += @{ Section = $k.Section; Key = $k.Key; Previous = $null }
        } else {
            if ($lines.Count -gt 0) { $lines.Add("") }
            $lines.Add("[$($k.Section)]")
            $lines.Add("$($k.Key)=$($k.Value)")
            $state.WslSections += $k.Section
            $state.WslConfig += @{ Section = $k.Section; Key = $k.Key; Previous = $null }
        }
        $changed = $true
    }
    if ($changed) {
        if (Test-Path $path) { Copy-Item $path "$path.wslq-bak" -Force }
        [System.IO.File]::WriteAllLines($path, $lines, (New-Object System.Text.UTF8Encoding($false)))
        $state.WslConfigPath = $path
        Write-Host "    .wslconfig changed: run 'wsl --shutdown', wait 8 s, then start the distro"
    }
}

# ---- 3. firewall -----------------------------------------------------------------------------
function Get-RuleSpecs {
    return @(
        @{ Name = "wslq-ports"; Display = "wslq control and HTTP (TCP $($WslqPorts -join ','))"; Ports = [string[]]($WslqPorts | ForEach-Object { "$_" }) },
        @{ Name = "wslq-jobs"; Display = "wslq job rendezvous and NCCL (TCP $JobPorts)"; Ports = [string[]]@($JobPorts) }
    )
}

function Set-Firewall($facts, $state, [switch]$ReadOnly) {
    Write-Step "Firewall (inbound TCP from $LabSubnet)"
    $subnets = [string[]]($LabSubnet -split ',' | ForEach-Object { $_.Trim() } | Where-Object { $_ })
    $hyperv = [bool](Get-Command New-NetFirewallHyperVRule -ErrorAction SilentlyContinue)
    foreach ($r in (Get-RuleSpecs)) {
        # Hyper-V firewall: filters traffic to WSL itself (always on in mirrored mode).
        if ($hyperv) {
            if (Get-NetFirewallHyperVRule -Name $r.Name -ErrorAction SilentlyContinue) { Write-Ok "Hyper-V rule $($r.Name)" }
            elseif ($ReadOnly) { Write-Miss "Hyper-V rule $($r.Name)" }
            elseif ($PSCmdlet.ShouldProcess($r.Name, "New-NetFirewallHyperVRule")) {
                New-NetFirewallHyperVRule -Name $r.Name -DisplayName $r.Display -Direction Inbound `
                    -VMCreatorId $WslVmCreatorId -Protocol TCP -LocalPorts $r.Ports `
                    -RemoteAddresses $subnets -Action Allow | Out-Null
                $state.HyperVRules += $r.Name
            }
        }
        # Windows Firewall: port-based rules are also merged into the Hyper-V firewall, and
        # cover NAT portproxy on Windows 10.
        if (Get-NetFirewallRule -Name $r.Name -ErrorAction SilentlyContinue) { Write-Ok "Windows Firewall rule $($r.Name)" }
        elseif ($ReadOnly) { Write-Miss "Windows Firewall rule $($r.Name)" }
        elseif ($PSCmdlet.ShouldProcess($r.Name, "New-NetFirewallRule")) {
            New-NetFirewallRule -Name $r.Name -DisplayName $r.Display -Direction Inbound -Protocol TCP `
                -LocalPort $r.Ports -RemoteAddress $subnets -Action Allow -Profile Any | Out-Null
            $state.FirewallRules += $r.Name
        }
    }
    if (-not $hyperv) { Write-Host "    (no Hyper-V firewall cmdlets: Windows 10/Server, NAT mode)" }
}

# ---- 4. power --------------------------------------------------------------------------------
# Current AC timeout in minutes for a SUB_SLEEP setting (STANDBYIDLE, HIBERNATEIDLE).
function Get-AcTimeout($setting) {
    $out = & powercfg.exe /query SCHEME_CURRENT SUB_SLEEP $setting 2>$null
    foreach ($l in $out) {
        if ($l -match 'Current AC Power Setting Index:\s*0x([0-9a-fA-F]+)') { return [int]([Convert]::ToInt32($Matches[1], 16) / 60) }
    }
    return $null
}

function Set-Power($state, [switch]$ReadOnly) {
    Write-Step "Power (AC)"
    $standby = Get-AcTimeout STANDBYIDLE
    $hibernate = Get-AcTimeout HIBERNATEIDLE
    if ($standby -eq 0 -and ($hibernate -eq 0 -or $null -eq $hibernate)) { Write-Ok "no sleep, no hibernate on AC"; return }
    if ($ReadOnly) { Write-Miss "sleep after $standby min / hibernate after $hibernate min on AC"; return }
    if ($PSCmdlet.ShouldProcess("power scheme", "standby-timeout-ac 0, hibernate-timeout-ac 0")) {
        if ($null -eq $state.Power) { $state.Power = @{ StandbyAc = $standby; HibernateAc = $hibernate } }
        & powercfg.exe /change standby-timeout-ac 0
        & powercfg.exe /change hibernate-timeout-ac 0
    }
}

# ---- 5. logon task ---------------------------------------------------------------------------
function Set-LogonTask($facts, $state, [switch]$ReadOnly) {
    Write-Step "Scheduled task $TaskName (at logon of $User)"
    if (Get-ScheduledTask -TaskName $TaskName -ErrorAction SilentlyContinue) { Write-Ok "task exists"; return }
    if ($ReadOnly) { Write-Miss "task $TaskName"; return }
    if (-not $PSCmdlet.ShouldProcess($TaskName, "Register-ScheduledTask")) { return }
    # Start the distro with a trivial command; instanceIdleTimeout=-1 keeps it (and systemd,
    # and wslq-worker) running afterwards. "At startup" without logon is unreliable with WSL.
    $actions = @(New-ScheduledTaskAction -Execute "wsl.exe" -Argument "-d $Distro --exec /bin/true")
    if (-not $facts.MirroredPossible -and $SchedulerHere) {
        $self = Join-Path $StateDir "install-node.ps1"
        Copy-Item $PSCommandPath $self -Force
        $actions += New-ScheduledTaskAction -Execute "powershell.exe" `
            -Argument "-NoProfile -ExecutionPolicy Bypass -File `"$self`" -RefreshPortProxy -Distro $Distro"
    }
    $trigger = New-ScheduledTaskTrigger -AtLogOn -User $User
    $principal = New-ScheduledTaskPrincipal -UserId $User -LogonType Interactive -RunLevel Highest
    $settings = New-ScheduledTaskSettingsSet -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries -ExecutionTimeLimit (New-TimeSpan -Minutes 5)
    Register-ScheduledTask -TaskName $TaskName -Action $actions -Trigger $trigger -Principal $principal `
        -Settings $settings -Description "wslq: start the WSL distro at logon" | Out-Null
    $state.Task = $TaskName
}

# ---- 5b. owner reporter ----------------------------------------------------------------------
# wslq-owner.ps1 in the logged-on user's session writes %ProgramData%\wslq\owner.json every 5 s
# (idle time, full screen, Windows GPU use, TDR settings); the worker reads it for its owner
# policy (README.md, "The owner reporter").
function Set-OwnerTask($state, [switch]$ReadOnly) {
    Write-Step "Scheduled task $OwnerTaskName (owner reporter, at logon of $User)"
    if (Get-ScheduledTask -TaskName $OwnerTaskName -ErrorAction SilentlyContinue) { Write-Ok "task exists"; return }
    if ($ReadOnly) { Write-Miss "task $OwnerTaskName"; return }
    if (-not $PSCmdlet.ShouldProcess($OwnerTaskName, "Register-ScheduledTask")) { return }
    if (-not (Test-Path $StateDir)) { New-Item -ItemType Directory -Path $StateDir | Out-Null }
    $script = Join-Path $StateDir "wslq-owner.ps1"
    Copy-Item (Join-Path $PSScriptRoot "wslq-owner.ps1") $script -Force
    $action = New-ScheduledTaskAction -Execute "powershell.exe" `
        -Argument "-NoProfile -NonInteractive -WindowStyle Hidden -ExecutionPolicy Bypass -File `"$script`""
    $trigger = New-ScheduledTaskTrigger -AtLogOn -User $User
    # Interactive: GetLastInputInfo and the foreground window only mean something in the
    # user's own session. Highest: it writes under %ProgramData%\wslq.
    $principal = New-ScheduledTaskPrincipal -UserId $User -LogonType Interactive -RunLevel Highest
    $settings = New-ScheduledTaskSettingsSet -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries `
        -ExecutionTimeLimit (New-TimeSpan -Seconds 0) -RestartCount 3 -RestartInterval (New-TimeSpan -Minutes 1)
    Register-ScheduledTask -TaskName $OwnerTaskName -Action $action -Trigger $trigger -Principal $principal `
        -Settings $settings -Description "wslq: report the PC owner's activity to the WSL worker" | Out-Null
    $state.OwnerTask = $OwnerTaskName
}

# ---- 6. NAT fallback: portproxy for the scheduler's fixed ports ------------------------------
function Update-PortProxy($state) {
    $ip = ((& wsl.exe -d $Distro --exec hostname -I) -split '\s+' | Where-Object { $_ -match '^\d+\.\d+\.\d+\.\d+$' } | Select-Object -First 1)
    if (-not $ip) { Write-Warning "no WSL IP (is the distro running?)"; return }
    foreach ($p in $WslqPorts) {
        if ($PSCmdlet.ShouldProcess("0.0.0.0:$p -> ${ip}:$p", "netsh portproxy")) {
            & netsh.exe interface portproxy delete v4tov4 listenport=$p listenaddress=0.0.0.0 2>$null | Out-Null
            & netsh.exe interface portproxy add v4tov4 listenport=$p listenaddress=0.0.0.0 connectport=$p connectaddress=$ip | Out-Null
            if ($state -and -not ($state.PortProxy -contains $p)) { $state.PortProxy += $p }
        }
    }
}

# ---- main ------------------------------------------------------------------------------------
if ($RefreshPortProxy) { Update-PortProxy $null; exit 0 }

$isAdmin = ([Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()).IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)
if (-not $isAdmin -and -not $Check -and -not $WhatIfPreference) { throw "run from an elevated PowerShell (Run as administrator), or use -Check / -WhatIf" }

$facts = Get-HostFacts
Show-HostFacts $facts
$state = Get-State
$state.Distro = $Distro

if ($Check) {
    Merge-WslConfig $facts $state -ReadOnly
    if ($LabSubnet) { Set-Firewall $facts $state -ReadOnly } else { Write-Host "==> Firewall: pass -LabSubnet to check the rules" }
    Set-Power $state -ReadOnly
    Set-LogonTask $facts $state -ReadOnly
    Set-OwnerTask $state -ReadOnly
    Write-Host ""
    if ($script:Missing -eq 0) { Write-Host "ready"; exit 0 }
    Write-Host "$($script:Missing) item(s) missing: run install-node.ps1 -LabSubnet <subnet> (elevated)"
    exit 1
}

if (-not $LabSubnet) { throw "-LabSubnet is required (e.g. -LabSubnet 192.168.10.0/24): inbound rules are limited to it" }
if (-not $facts.MirroredPossible) {
    Write-Warning "mirrored networking is not available here: this node will take single-node jobs only (NAT)"
}

try {
    Merge-WslConfig $facts $state
    Set-Firewall $facts $state
    Set-Power $state
    Set-LogonTask $facts $state
    Set-OwnerTask $state
    if (-not $facts.MirroredPossible -and $SchedulerHere) { Update-PortProxy $state }
} finally {
    Save-State $state
}

Write-Host ""
Write-Host "Done. Next: 'wsl --shutdown', wait 8 seconds, open the distro and run"
Write-Host "    sudo deploy/wsl/install.sh$(if ($SchedulerHere) { ' --scheduler-host' })"
Write-Host "then check with 'wslq doctor' inside WSL (it should report mirrored networking)."
