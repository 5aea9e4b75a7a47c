<#
.SYNOPSIS
    wslq owner reporter: tells the WSL worker what the person at this PC is doing.
.DESCRIPTION
    Runs in the logged-on user's session (scheduled task wslq-owner-reporter, installed by
    install-node.ps1). Every -IntervalSeconds it writes %ProgramData%\wslq\owner.json
    atomically (%ProgramData%\wslq\owner.json.tmp, then a rename over the old file): seconds since the last
    keyboard/mouse input, whether a full-screen window is in front, the GPU memory and
    engine use of Windows processes by name, the TDR registry settings and how many display
    driver resets (TDR, System log event 4101) Windows logged since it started.
    The format (version 1) is specified in README.md next to this script; the worker in WSL
    reads the file through /mnt/c/ProgramData/wslq/owner.json. PowerShell 5.1 compatible.
#>
[CmdletBinding()]
param(
    [int]$IntervalSeconds = 5,
    [string]$OutDir = (Join-Path $env:ProgramData "wslq"),
    [switch]$Once
)

Set-StrictMode -Version 3
$ErrorActionPreference = "Stop"

Add-Type -TypeDefinition @"
using System;
using System.Runtime.InteropServices;
public static class WslqOwner {
    [StructLayout(LayoutKind.Sequential)]
    struct LASTINPUTINFO { public uint cbSize; public uint dwTime; }
    [StructLayout(LayoutKind.Sequential)]
    struct RECT { public int Left, Top, Right, Bottom; }
    [DllImport("user32.dll")] static extern bool GetLastInputInfo(ref LASTINPUTINFO plii);
    [DllImport("user32.dll")] static extern IntPtr GetForegroundWindow();
    [DllImport("user32.dll")] static extern IntPtr GetShellWindow();
    [DllImport("user32.dll")] static extern IntPtr GetDesktopWindow();
    [DllImport("user32.dll")] static extern bool GetWindowRect(IntPtr h, out RECT r);
    [DllImport("user32.dll")] static extern IntPtr MonitorFromWindow(IntPtr h, uint flags);
    [StructLayout(LayoutKind.Sequential)]
    struct MONITORINFO { public uint cbSize; public RECT rcMonitor; public RECT rcWork; public uint dwFlags; }
    [DllImport("user32.dll")] static extern bool GetMonitorInfo(IntPtr m, ref MONITORINFO mi);
    public static double IdleSeconds() {
        LASTINPUTINFO li = new LASTINPUTINFO();
        li.cbSize = (uint)Marshal.SizeOf(li);
        if (!GetLastInputInfo(ref li)) return -1;
        uint now = (uint)Environment.TickCount;
        return (now - li.dwTime) / 1000.0;   // unsigned: right across the 49.7-day wrap
    }
    public static bool FullScreen() {
        IntPtr w = GetForegroundWindow();
        if (w == IntPtr.Zero || w == GetShellWindow() || w == GetDesktopWindow()) return false;
        RECT r;
        if (!GetWindowRect(w, out r)) return false;
        MONITORINFO mi = new MONITORINFO();
        mi.cbSize = (uint)Marshal.SizeOf(mi);
        if (!GetMonitorInfo(MonitorFromWindow(w, 2), ref mi)) return false;
        return r.Left <= mi.rcMonitor.Left && r.Top <= mi.rcMonitor.Top &&
               r.Right >= mi.rcMonitor.Right && r.Bottom >= mi.rcMonitor.Bottom;
    }
}
"@

# Counter instance names look like "pid_1234_luid_0x..._phys_0_eng_3_engtype_3D"; the
# process name comes from the pid.
function Get-PidFromInstance([string]$inst) {
    if ($inst -match 'pid_(\d+)_') { return [int]$Matches[1] }
    return -1
}

function Get-GpuProcesses {
    $byPid = @{}
    try {
        # SilentlyContinue: a process that ends between listing and sampling makes Get-Counter
        # report an error for that instance only. No samples at all: the counters are missing
        # (an older driver, or a Windows whose counter names are localised).
        $mem = (Get-Counter '\GPU Process Memory(*)\Dedicated Usage' -ErrorAction SilentlyContinue).CounterSamples
        if (-not $mem) { return $null }
        foreach ($s in $mem) {
            $p = Get-PidFromInstance $s.InstanceName
            if ($p -le 0) { continue }
            if (-not $byPid.ContainsKey($p)) { $byPid[$p] = @{ mem = 0.0; eng = 0.0 } }
            $byPid[$p].mem += $s.CookedValue
        }
        $eng = (Get-Counter '\GPU Engine(*)\Utilization Percentage' -ErrorAction SilentlyContinue).CounterSamples
        if (-not $eng) { return $null }
        foreach ($s in $eng) {
            $p = Get-PidFromInstance $s.InstanceName
            if ($p -le 0) { continue }
            if (-not $byPid.ContainsKey($p)) { $byPid[$p] = @{ mem = 0.0; eng = 0.0 } }
            # the busiest engine of the process, not the sum over its engines
            if ($s.CookedValue -gt $byPid[$p].eng) { $byPid[$p].eng = $s.CookedValue }
        }
    } catch {
        return $null   # counters unavailable: the file says gpu_ok = false
    }
    $out = @()
    foreach ($p in $byPid.Keys) {
        $name = "pid$p"
        $proc = Get-Process -Id $p -ErrorAction SilentlyContinue
        if ($proc) { $name = $proc.ProcessName }
        $mb = [int64][math]::Round($byPid[$p].mem / 1MB)
        $pct = [math]::Round([math]::Min(100.0, $byPid[$p].eng), 1)
        if ($mb -le 0 -and $pct -le 0) { continue }
        $out += [ordered]@{ name = $name; pid = $p; mem_mb = $mb; engine_pct = $pct }
    }
    return , $out
}

# Windows' start, once: TDR events are counted since then.
$script:BootTime = $null
try { $script:BootTime = (Get-CimInstance -ClassName Win32_OperatingSystem).LastBootUpTime } catch { }

# Display driver resets since Windows started: System log events from source "Display" with id
# 4101 ("Display driver ... stopped responding and has successfully recovered"). $null when the
# log cannot be read.
function Get-TdrEvents {
    if ($null -eq $script:BootTime) { return $null }
    $filter = @{ LogName = 'System'; ProviderName = 'Display'; Id = 4101; StartTime = $script:BootTime }
    try {
        return [int64]@(Get-WinEvent -FilterHashtable $filter -ErrorAction Stop).Count
    } catch {
        # none since the start is an error to Get-WinEvent; any other error is "unknown"
        if ($_.FullyQualifiedErrorId -like 'NoMatchingEventsFound*') { return [int64]0 }
        return $null
    }
}

function Get-Tdr {
    $key = 'HKLM:\SYSTEM\CurrentControlSet\Control\GraphicsDrivers'
    $t = [ordered]@{ delay_s = 2; level = 3; events = 0 }   # Windows' defaults when the values are absent
    $v = Get-ItemProperty -Path $key -ErrorAction SilentlyContinue
    if ($v) {
        if ($v.PSObject.Properties['TdrDelay']) { $t.delay_s = [int]$v.TdrDelay }
        if ($v.PSObject.Properties['TdrLevel']) { $t.level = [int]$v.TdrLevel }
    }
    $n = Get-TdrEvents
    if ($null -eq $n) { $t.Remove('events') } else { $t.events = $n }   # left out when unknown
    return $t
}

function Write-Report {
    $gpu = Get-GpuProcesses
    $report = [ordered]@{
        version      = 1
        time         = [int64][math]::Floor(([DateTimeOffset]::UtcNow).ToUnixTimeMilliseconds() / 1000)
        idle_s       = [int64][math]::Floor([WslqOwner]::IdleSeconds())
        fullscreen   = [WslqOwner]::FullScreen()
        gpu_ok       = ($null -ne $gpu)
        gpu_procs    = @(if ($gpu) { $gpu })
        tdr          = Get-Tdr
    }
    if (-not (Test-Path $OutDir)) { New-Item -ItemType Directory -Path $OutDir | Out-Null }
    $final = Join-Path $OutDir "owner.json"
    $tmp = "$final.tmp"
    $json = ConvertTo-Json -InputObject $report -Depth 4 -Compress
    [System.IO.File]::WriteAllText($tmp, $json, (New-Object System.Text.UTF8Encoding($false)))
    # File.Replace is an atomic rename over an existing file; Move for the first write.
    if (Test-Path $final) { [System.IO.File]::Replace($tmp, $final, $null) }
    else { [System.IO.File]::Move($tmp, $final) }
}

while ($true) {
    try { Write-Report } catch { Write-Warning "wslq-owner: $($_.Exception.Message)" }
    if ($Once) { break }
    Start-Sleep -Seconds $IntervalSeconds
}
