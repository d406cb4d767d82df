//! `TCP_NODELAY` on the pool's sockets.
//!
//! sqlx 0.9.0 opens its TCP connections without it (it was dropped in launchbadge/sqlx#4022;
//! the fix, #4336, is merged but not released). Without it a message sent right after another,
//! before the server has answered — `COPY`'s data and then its end — waits for the server's
//! delayed acknowledgement (Nagle's algorithm meeting delayed ACKs): ~40 ms on Linux, which
//! made a one-lead import complete in 46 ms instead of 4. sqlx gives no access to its socket,
//! so after each new connection [`set_on_sockets_to`] sets the option on every TCP socket of
//! the process connected to the database's port; for any other socket it is harmless, and
//! `libpq` sets it on every connection. Hand-written for want of a sqlx option; remove it with
//! the sqlx release that sets it again.

use std::os::fd::BorrowedFd;

/// Sets `TCP_NODELAY` on this process's TCP sockets whose peer port is `port`. Where there is
/// no `/proc/self/fd` (not Linux), does nothing.
pub(super) fn set_on_sockets_to(port: u16) {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for fd in fds
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
    {
        // SAFETY: the descriptor was open when listed. Another thread may close it meanwhile
        // (or a new file reuse the number): the calls below then fail with EBADF or ENOTSOCK,
        // or set TCP_NODELAY on another TCP socket, all harmless; nothing is read or written
        // through it and it is not closed here.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&fd);
        let peer_port = socket
            .peer_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map(|a| a.port());
        if peer_port == Some(port) {
            let _ = socket.set_tcp_nodelay(true);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn sockets_to_the_port_get_nodelay_and_others_do_not() {
        let database = TcpListener::bind("127.0.0.1:0").unwrap();
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        let to_database = TcpStream::connect(database.local_addr().unwrap()).unwrap();
        let to_other = TcpStream::connect(other.local_addr().unwrap()).unwrap();
        assert!(!to_database.nodelay().unwrap() && !to_other.nodelay().unwrap());
        set_on_sockets_to(database.local_addr().unwrap().port());
        assert!(to_database.nodelay().unwrap());
        assert!(!to_other.nodelay().unwrap());
    }
}
