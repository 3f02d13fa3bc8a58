//! Files replaced in one step, and the lock that serialises read-modify-write of the ledger.
//!
//! Every file waftune writes for people or later runs (ledger, plan, snapshot, promoted config) goes
//! through [`write()`]: a uniquely named temporary file in the same directory, flushed to disk, renamed
//! over the target, and the directory flushed too. A reader, a crash or a concurrent writer therefore
//! sees the old file or the new one, never a mix, and two writers never share a temporary file.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// The directory holding `path` (`.` for a bare file name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Replaces `path` with `bytes` atomically and durably, creating its directory if needed.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent(path);
    std::fs::create_dir_all(dir)?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".waftune-").suffix(".tmp");
    // The permissions `std::fs::write` would give a new file (0666 less the umask), not
    // tempfile's private 0600: the file is meant to be read by others, as before.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder.tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// Flushes a directory's entries (the rename) to disk. Only Unix can open a directory for that;
/// elsewhere the rename is as durable as the file system makes it.
fn sync_dir(dir: &Path) -> io::Result<()> {
    if cfg!(unix) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// An exclusive advisory lock, held until dropped.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Waits for the exclusive lock of `path`, a lock file kept beside the data it guards (created
/// empty if missing, and never removed: removing it would let a waiting process lock a file that
/// no longer has a name).
pub fn lock(path: &Path) -> io::Result<Lock> {
    std::fs::create_dir_all(parent(path))?;
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    file.lock()?;
    Ok(Lock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/plan.json");
        write(&path, b"first, longer content\n").unwrap();
        write(&path, b"second\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second\n");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["plan.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn new_files_are_readable_like_fs_write() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (ours, std) = (dir.path().join("a"), dir.path().join("b"));
        write(&ours, b"x").unwrap();
        std::fs::write(&std, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode();
        assert_eq!(mode(&ours), mode(&std));
    }

    #[test]
    fn lock_excludes_a_second_holder_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/.ledger.lock");
        let held = lock(&path).unwrap();
        let other = File::options().write(true).open(&path).unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop(held);
        other.try_lock().unwrap();
    }
}
