//! CPU time of the private Postgres and Redis servers, read from `/proc`, so the drain's cost
//! on the servers is counted beside the drain process's own.

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
