//! CPU time of the private Postgres and Redis servers, read from `/proc`, so the drain's cost
//! on the servers is counted beside the drain process's own; and the WAL Postgres wrote.

/// CPU seconds used so far by the server listening on `port`: the postmaster (with the
/// backends it has reaped) and its live children for Postgres, the process for Redis.
pub fn server_cpu_s(port: u16, postgres: bool) -> f64 {
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let port = port.to_string();
    let stat = |pid: &str| -> Option<Vec<u64>> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let after = &text[text.rfind(')')? + 2..];
        Some(
            after
                .split_whitespace()
                .map(|f| f.parse().unwrap_or(0))
                .collect(),
        )
    };
    let pids: Vec<String> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.chars().all(|c| c.is_ascii_digit()))
        .collect();
    let Some(server) = pids.iter().find(|pid| {
        let args: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
            .unwrap_or_default()
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if postgres {
            args.windows(2).any(|w| w[0] == "-p" && w[1] == port)
                && args.first().is_some_and(|a| a.ends_with("postgres"))
        } else {
            args.first().is_some_and(|a| a.contains("redis-server"))
                && args.iter().any(|a| a.ends_with(&format!(":{port}")))
        }
    }) else {
        return f64::NAN;
    };
    // Fields after the name: [0] state, [1] ppid, ..., [11] utime, [12] stime, [13] cutime, [14] cstime.
    let own = stat(server).map_or(0, |f| f[11] + f[12] + f[13] + f[14]);
    let children: u64 = pids
        .iter()
        .filter_map(|pid| stat(pid))
        .filter(|f| f[1].to_string() == *server)
        .map(|f| f[11] + f[12])
        .sum();
    (own + children) as f64 / tick
}

pub fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|rest| rest.split('/').next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU seconds the whole machine has spent busy (not idle, not waiting for I/O) since boot,
/// over all cores: the difference across a phase, less what the bench's processes used, is
/// what other work on the machine took meanwhile.
pub fn machine_busy_s() -> f64 {
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    busy_ticks(&stat).map_or(f64::NAN, |t| t as f64 / tick)
}

/// The busy ticks of /proc/stat's first line: user, nice, system, irq, softirq and steal
/// (everything but idle and iowait; guest time is already inside user).
fn busy_ticks(stat: &str) -> Option<u64> {
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let at = |i: usize| fields.get(i).copied().unwrap_or(0);
    Some(at(0) + at(1) + at(2) + at(5) + at(6) + at(7))
}

/// CPU seconds process `pid` has used so far (user + system), or NaN once it is gone.
pub fn process_cpu_s(pid: u32) -> f64 {
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    let Some(after) = text.rfind(')').map(|i| &text[i + 2..]) else {
        return f64::NAN;
    };
    let fields: Vec<u64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    (fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0)) as f64 / tick
}

/// A process's peak resident set so far (VmHWM), in kB; 0 when unknown.
pub fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Postgres's current WAL position.
pub async fn wal_lsn(db: &sqlx::PgPool) -> anyhow::Result<String> {
    Ok(sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(db)
        .await?)
}

/// Bytes of WAL written since `lsn` (from [`wal_lsn`]).
pub async fn wal_bytes_since(db: &sqlx::PgPool, lsn: &str) -> anyhow::Result<f64> {
    Ok(
        sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::float8")
            .bind(lsn)
            .fetch_one(db)
            .await?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_time_leaves_out_idle_and_iowait() {
        let stat = "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n";
        assert_eq!(busy_ticks(stat), Some(100 + 5 + 50 + 3 + 2 + 1));
        assert_eq!(busy_ticks("intr 1 2\n"), None);
    }

    #[test]
    fn a_url_gives_its_port() {
        assert_eq!(port_of("postgres://u@127.0.0.1:54321/leads"), 54321);
        assert_eq!(port_of("redis://127.0.0.1:6390"), 6390);
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        let spin = (0..2_000_000u64).fold(0u64, |a, b| a.wrapping_add(b * b));
        assert!(spin > 0);
        assert!(process_cpu_s(std::process::id()) >= 0.0);
        assert!(machine_busy_s() > 0.0);
    }
}
