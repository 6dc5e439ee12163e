//! The data directory holds every session and the logout-token signing keys: only the server's
//! user may read it. It is created `0700`, and its files are made `0600` (the process umask,
//! set in `main`, keeps new ones so). One process owns it: sled locks it while the store is open.

use std::path::Path;

#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;

use crate::error::ServerError;

/// Creates the directory `0700` if missing, and narrows an existing one to `0700`.
pub fn prepare(dir: &Path) -> Result<(), ServerError> {
    std::fs::create_dir_all(dir).map_err(|source| ServerError::DataDir {
        action: "create",
        path: dir.to_owned(),
        source,
    })?;
    #[cfg(unix)]
    {
        let mode = std::fs::metadata(dir)
            .map_err(|source| ServerError::DataDir {
                action: "read",
                path: dir.to_owned(),
                source,
            })?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(
                |source| ServerError::DataDir {
                    action: "restrict to 0700",
                    path: dir.to_owned(),
                    source,
                },
            )?;
            tracing::info!("restricted {} to its owner (0700)", dir.display());
        }
    }
    Ok(())
}

/// Makes every file under `dir` readable and writable by its owner only, and every directory
/// `0700`.
pub fn restrict_files(dir: &Path) -> Result<(), ServerError> {
    #[cfg(unix)]
    {
        let listing = |source| ServerError::DataDir {
            action: "list",
            path: dir.to_owned(),
            source,
        };
        for entry in std::fs::read_dir(dir).map_err(listing)? {
            let entry = entry.map_err(listing)?;
            let path = entry.path();
            let meta = entry.metadata().map_err(|source| ServerError::DataDir {
                action: "read",
                path: path.clone(),
                source,
            })?;
            let wanted = if meta.is_dir() { 0o700 } else { 0o600 };
            if meta.permissions().mode() & 0o777 != wanted {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(wanted)).map_err(
                    |source| ServerError::DataDir {
                        action: "restrict",
                        path: path.clone(),
                        source,
                    },
                )?;
            }
            if meta.is_dir() {
                restrict_files(&path)?;
            }
        }
    }
    Ok(())
}

/// Whether another holder has the embedded store in `dir` open (another process, or a store of
/// this one whose threads have not let go yet).
pub fn in_use(dir: &Path) -> bool {
    sessions::store::dir_lock::held(dir)
}

/// Runs `open` (opening or compacting the embedded store in `dir`) unless the directory is in
/// use; a failure is [`ServerError::StoreInUse`] when the directory is locked (by then), else
/// what `failed` makes of the store's error.
pub fn unless_in_use<T>(
    dir: &Path,
    open: impl FnOnce() -> sessions::Result<T>,
    failed: impl FnOnce(sessions::SessionError) -> ServerError,
) -> Result<T, ServerError> {
    let in_use_error = || ServerError::StoreInUse {
        dir: dir.to_owned(),
    };
    if in_use(dir) {
        return Err(in_use_error());
    }
    open().map_err(|e| {
        if in_use(dir) {
            in_use_error()
        } else {
            failed(e)
        }
    })
}

/// Files and directories the process creates from now on are its user's alone.
pub fn restrict_new_files() {
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}
