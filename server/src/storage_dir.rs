//! The data directory holds every session and the logout-token signing keys: only the server's
//! user may read it. It is created `0700`, and its files are made `0600` (the process umask,
//! set in `main`, keeps new ones so).

use std::path::Path;

#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;

/// Creates the directory `0700` if missing, and narrows an existing one to `0700`.
pub fn prepare(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    #[cfg(unix)]
    {
        let mode = std::fs::metadata(dir)
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("cannot restrict {} to 0700: {e}", dir.display()))?;
            tracing::info!("restricted {} to its owner (0700)", dir.display());
        }
    }
    Ok(())
}

/// Makes every file under `dir` readable and writable by its owner only, and every directory
/// `0700`.
pub fn restrict_files(dir: &Path) -> Result<(), String> {
    #[cfg(unix)]
    for entry in
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?
    {
        let entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path();
        let meta = entry.metadata().map_err(|e| e.to_string())?;
        let wanted = if meta.is_dir() { 0o700 } else { 0o600 };
        if meta.permissions().mode() & 0o777 != wanted {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(wanted))
                .map_err(|e| format!("cannot restrict {}: {e}", path.display()))?;
        }
        if meta.is_dir() {
            restrict_files(&path)?;
        }
    }
    Ok(())
}

/// Files and directories the process creates from now on are its user's alone.
pub fn restrict_new_files() {
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}
