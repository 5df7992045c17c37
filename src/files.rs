//! Files Agentry writes hold tokens' keys, data and certificates: they are
//! its own user's alone. Folders it creates are mode 700 and files 600,
//! whatever the umask (set explicitly after creation, since a umask can
//! only take bits away and an unusual one could take the owner's).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Creates `dir` and any missing parent, each created one mode 700.
/// Folders that already exist keep their mode.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_private_dir(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => restrict(dir, 0o700),
        // Created meanwhile by someone else: leave its mode alone.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("{} exists and is not a folder", dir.display()),
        )),
        Err(e) => Err(e),
    }
}

/// Creates (or truncates) a file only its owner may read and write.
pub fn create_private_file(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    restrict(path, 0o600)?;
    Ok(file)
}

/// Creates a file only its owner may read and write; fails if it exists.
pub fn create_new_private_file(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    restrict(path, 0o600)?;
    Ok(file)
}

/// Writes a whole file only its owner may read and write.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut file = create_private_file(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Takes the group's and others' permissions off an existing file
/// (best effort: a file of another owner stays as it is).
pub fn make_private(path: &Path) {
    if path.exists() {
        let _ = restrict(path, 0o600);
    }
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn restrict(_: &Path, _: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_folders_are_700_and_files_600_and_existing_folders_keep_their_mode() {
        let temp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let deep = temp.path().join("a/b");
        create_private_dir(&deep).unwrap();
        assert_eq!(mode(&temp.path().join("a")), 0o700);
        assert_eq!(mode(&deep), 0o700);
        assert_eq!(mode(temp.path()), 0o755);
        let file = deep.join("f");
        write_private(&file, b"x").unwrap();
        assert_eq!(mode(&file), 0o600);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        make_private(&file);
        assert_eq!(mode(&file), 0o600);
    }
}

/// A private folder that lives in memory where the system offers one
/// (`/dev/shm` on Linux; else the temporary folder), removed when dropped:
/// the home of `agentry serve --in-memory`.
#[derive(Debug)]
pub struct MemoryFolder {
    path: PathBuf,
}

impl MemoryFolder {
    pub fn create() -> io::Result<Self> {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_owned()
        } else {
            std::env::temp_dir()
        };
        let path = base.join(format!("agentry-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&path)?;
        restrict(&path, 0o700)?;
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for MemoryFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
