//! Whether a sled directory is open elsewhere, asked of the operating system rather than read
//! from sled's error text: sled locks `dir/db` with `flock` and reports a lock it could not take
//! only as a message.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::Result;

/// Whether another holder has the sled directory `dir` open (another process, or a store of
/// this one whose threads have not let go yet): a second `flock` on its `db` file fails with
/// `WouldBlock`.
#[cfg(unix)]
pub fn held(dir: &Path) -> bool {
    use std::os::unix::io::AsRawFd;
    let Ok(file) = std::fs::File::open(dir.join("db")) else {
        // No store there yet (or none readable): nothing holds it.
        return false;
    };
    // SAFETY: flock on a descriptor we own. A shared lock is refused while sled holds its
    // exclusive one; one that is granted is released when `file` is closed, at the return.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0 {
        return false;
    }
    std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock
}

/// Whether another holder has the sled directory `dir` open (not known on this platform).
#[cfg(not(unix))]
pub fn held(_dir: &Path) -> bool {
    false
}

/// Runs `open` (of the sled directory `dir`) again while it fails because `dir` is held, for up
/// to `wait`: a store of this process that was just dropped lets go of its lock a moment later.
/// Any other failure, or one still held after `wait`, is answered as it is.
pub fn open_when_free<T>(
    dir: &Path,
    wait: Duration,
    mut open: impl FnMut() -> Result<T>,
) -> Result<T> {
    let deadline = Instant::now() + wait;
    // The holder may let go between a failed open and the question: one more try then.
    let mut tried_free = false;
    loop {
        match open() {
            Err(_) if Instant::now() < deadline && held(dir) => {
                tried_free = false;
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(_) if Instant::now() < deadline && !tried_free => tried_free = true,
            done => return done,
        }
    }
}
