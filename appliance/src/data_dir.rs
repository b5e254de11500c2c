//! The data directory: created private, locked against a second process, holding the JWT secret.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

const LOCK_FILE: &str = "taskstream.lock";
const SECRET_FILE: &str = "jwt-secret";
pub const DATABASE_FILE: &str = "taskstream.db";

/// Holds the exclusive lock on a data directory for as long as it lives.
pub struct DataDirLock {
    _file: File,
}

/// Group and other permission bits: none of them belong on the data directory or its files.
const SHARED_BITS: u32 = 0o077;

/// Creates the directory if needed and makes it and every file in it private to this user
/// (directory 0700, files 0600), whatever the umask: tasks, tokens' hashes and the JWT secret
/// are nobody else's to read. A directory or file from an older version that others could read
/// is tightened, with a warning.
pub fn ensure(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
        restrict(dir, 0o700)?;
    } else {
        let mode = fs::metadata(dir)
            .with_context(|| format!("cannot read the data directory {}", dir.display()))?
            .permissions()
            .mode();
        if mode & SHARED_BITS != 0 {
            tracing::warn!(dir = %dir.display(), mode = format!("{:o}", mode & 0o777),
                "the data directory was open to other users; restricting it to 0700");
            restrict(dir, 0o700)?;
        }
    }
    let entries = fs::read_dir(dir)
        .with_context(|| format!("cannot list the data directory {}", dir.display()))?;
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_file() && meta.permissions().mode() & SHARED_BITS != 0 {
            tracing::warn!(file = %entry.path().display(), mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "a data file was readable by other users; restricting it to 0600");
            restrict(&entry.path(), 0o600)?;
        }
    }
    Ok(())
}

fn restrict(path: &Path, mode: u32) -> anyhow::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot restrict the permissions of {}", path.display()))
}

/// Creates `path` empty with mode 0600 unless it exists, so the store that opens it next (SQLite
/// and redb both start a new database in an empty file) never makes it with the umask's mode.
/// SQLite gives its `-wal` and `-shm` files the database file's mode.
pub fn private_file(path: &Path) -> anyhow::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error).with_context(|| format!("cannot create {}", path.display())),
    }
}

/// Takes the directory's lock, or fails at once naming the process that holds it.
pub fn lock(dir: &Path) -> anyhow::Result<DataDirLock> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let pid = if holder.is_empty() {
                "unknown".to_owned()
            } else {
                holder.to_owned()
            };
            bail!(
                "the data directory {} is locked by another taskstream process (pid {pid}); stop it or choose another --data-dir",
                dir.display()
            );
        }
        Err(TryLockError::Error(error)) => {
            return Err(error).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    file.set_len(0)?;
    write!(file, "{}", std::process::id())?;
    file.flush()?;
    Ok(DataDirLock { _file: file })
}

fn secret_path(dir: &Path) -> PathBuf {
    dir.join(SECRET_FILE)
}

/// Reads the kept secret, if one was generated before.
pub fn read_secret(dir: &Path) -> anyhow::Result<Option<String>> {
    let path = secret_path(dir);
    match fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => Ok(Some(text.trim().to_owned())),
        Ok(_) => bail!(
            "the secret file {} is empty; delete it to generate a new one",
            path.display()
        ),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Returns the kept secret, generating a random one (256 bits, mode 0600) on first start.
pub fn load_or_create_secret(dir: &Path) -> anyhow::Result<String> {
    if let Some(secret) = read_secret(dir)? {
        return Ok(secret);
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|error| anyhow::anyhow!("no randomness for the JWT secret: {error}"))?;
    let secret: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    let path = secret_path(dir);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(secret.as_bytes())?;
    file.sync_all()?;
    tracing::info!(path = %path.display(), "generated a new JWT secret");
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn an_open_directory_and_its_files_are_made_private() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("data");
        fs::create_dir(&dir).expect("mkdir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod dir");
        let old = dir.join(DATABASE_FILE);
        fs::write(&old, b"").expect("write");
        fs::set_permissions(&old, fs::Permissions::from_mode(0o666)).expect("chmod file");
        ensure(&dir).expect("ensure");
        assert_eq!(mode_of(&dir), 0o700);
        assert_eq!(mode_of(&old), 0o600);
        let fresh = root.path().join("fresh");
        ensure(&fresh).expect("ensure fresh");
        assert_eq!(mode_of(&fresh), 0o700);
        let file = fresh.join("events.redb");
        private_file(&file).expect("create");
        assert_eq!(mode_of(&file), 0o600);
        fs::write(&file, b"kept").expect("write");
        private_file(&file).expect("exists already");
        assert_eq!(
            fs::read(&file).expect("read"),
            b"kept",
            "an existing file is left as it is"
        );
    }

    #[test]
    fn a_second_lock_on_the_same_directory_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = lock(dir.path()).expect("first lock");
        let second = lock(dir.path()).err().expect("second lock must fail");
        assert!(
            second
                .to_string()
                .contains("locked by another taskstream process"),
            "{second}"
        );
        drop(first);
        lock(dir.path()).expect("lock again after release");
    }

    #[test]
    fn the_generated_secret_is_private_and_stable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = load_or_create_secret(dir.path()).expect("create");
        assert_eq!(secret.len(), 64);
        let mode = fs::metadata(dir.path().join(SECRET_FILE))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_or_create_secret(dir.path()).expect("reload"), secret);
    }
}
