//! The `leads-local` process the import and status phases load: started next to this
//! binary, "ready" at its first answered request (its cold start), stopped with SIGTERM.

use anyhow::{Context as _, bail, ensure};
use std::io::{BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `target/release/leads-local` on a loopback port, with its drain schedule pushed out of the
/// way (the bench drains in its own phase).
pub struct LeadsLocal {
    child: std::process::Child,
    pub addr: SocketAddr,
    pub ready_ms: f64,
}

impl LeadsLocal {
    pub fn start(redis_url: &str, database_url: &str) -> anyhow::Result<Self> {
        let exe = sibling_binary("leads-local")?;
        let started = Instant::now();
        let mut child = Command::new(&exe)
            .env("REDIS_URL", redis_url)
            .env("DATABASE_URL", database_url)
            .env("PORT", "0")
            .env("BLOCK_TIMEOUT", "0")
            .env("DRAIN_INTERVAL_MS", "86400000")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let Some(line) = lines.next() else {
                let _ = child.kill();
                bail!("leads-local exited before listening");
            };
            let line = line?;
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or_default();
                break addr.parse::<SocketAddr>()?;
            }
        };
        // Keep reading its stdout so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        // "Ready" is the first answered request, not the log line.
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(addr) {
                use std::io::Write as _;
                let _ = s.write_all(
                    b"GET /leads/import/none/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                );
                let mut first = [0u8; 12];
                if s.read_exact(&mut first).is_ok() {
                    break;
                }
            }
            ensure!(
                started.elapsed() < Duration::from_secs(30),
                "leads-local did not answer"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(LeadsLocal {
            child,
            addr,
            ready_ms: started.elapsed().as_secs_f64() * 1000.0,
        })
    }

    /// CPU seconds the process has used so far.
    pub fn cpu_s(&self) -> f64 {
        crate::server_cpu::process_cpu_s(self.child.id())
    }

    /// The process's peak RSS so far, in MB (VmHWM).
    pub fn peak_rss_mb(&self) -> f64 {
        crate::server_cpu::peak_rss_kb(self.child.id()) as f64 / 1024.0
    }

    pub fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let _ = self.child.wait();
        }
    }
}

impl Drop for LeadsLocal {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A binary built next to this one (`target/release/...`).
fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name(name);
    ensure!(
        path.is_file(),
        "{} is missing: cargo build --release -p {name}",
        path.display()
    );
    Ok(path)
}
