//! The few operating-system calls std does not offer, in one audited place: the only `unsafe`
//! in the countersign crate. Each call takes plain values or a NUL-terminated path that lives
//! for the whole call, and reports failure through its return value and `errno`.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

/// Marks the process not dumpable: no core file (which would hold the signing key, the session
/// data key and citizens' data in the clear), and no ptrace or `/proc/<pid>/mem` reads by other
/// processes of the same user. Children started with `execve` (scanimage) become dumpable again,
/// which is right: they hold no secrets.
pub fn forbid_core_dumps() -> io::Result<()> {
    // SAFETY: PR_SET_DUMPABLE takes one integer argument (0 or 1); the unused arguments are
    // zero as prctl(2) asks. No memory is passed.
    let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether the process may dump core (PR_GET_DUMPABLE).
pub fn is_dumpable() -> bool {
    // SAFETY: PR_GET_DUMPABLE takes no further arguments and returns the flag.
    let rc = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
    rc != 0
}

/// The effective user id (owner check of secret files).
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) takes nothing and cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether this process may create and rename entries in `dir` (access(2) with W_OK|X_OK:
/// permission bits, ACLs and read-only mounts alike, as the kernel will judge the real calls).
pub fn may_write_dir(dir: &Path) -> io::Result<()> {
    let c = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call; access(2) only reads it.
    let rc = unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Bytes an unprivileged process may still write on the file system holding `path` (statvfs(3):
/// available blocks times the fragment size).
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: an all-zero statvfs is a valid value of this plain C struct.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated string and `stat` a valid, writable statvfs; both
    // outlive the call.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut stat) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // The field types are 32 bits wide on some targets, 64 on others.
    #[allow(clippy::useless_conversion)]
    let free = u64::from(stat.f_bavail).saturating_mul(u64::from(stat.f_frsize));
    Ok(free)
}
