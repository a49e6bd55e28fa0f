//! Who runs and where: the operator and host a record names when nobody
//! says otherwise. A root shell without `$USER` (a container, `sudo -i`
//! on some systems, cron) still has an account and a host name, so a
//! record never says "unknown".

use std::ffi::CStr;

/// The operator of this process: `$USER`, else `$LOGNAME`, else the name of
/// the process's (real) user account, else `uid N` when the account has no
/// name (a container's bare uid).
pub fn operator() -> String {
    named(std::env::var("USER").ok())
        .or_else(|| named(std::env::var("LOGNAME").ok()))
        .unwrap_or_else(account)
}

/// The user account running this process: its name from the password
/// database, else `uid N`.
pub fn account() -> String {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    account_name(uid).unwrap_or_else(|| format!("uid {uid}"))
}

/// This machine's name: `gethostname`, else the kernel's
/// `/proc/sys/kernel/hostname`, else `uname`'s node name, else
/// `(unnamed host)` for a kernel that reports none.
pub fn host() -> String {
    gethostname()
        .or_else(|| {
            named(
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|s| s.trim().to_owned()),
            )
        })
        .or_else(uname_nodename)
        .unwrap_or_else(|| "(unnamed host)".into())
}

fn named(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// The name of account `uid` in the password database.
fn account_name(uid: libc::uid_t) -> Option<String> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: an all-zero passwd (null pointers, zero ids) is a valid
        // value for getpwuid_r to overwrite.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call, and the buffer's
        // length is passed with it; the strings in `entry` point into `buf`.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                &mut entry,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || found.is_null() || entry.pw_name.is_null() {
            return None;
        }
        // SAFETY: on success pw_name is a NUL-terminated string inside `buf`,
        // which outlives this borrow.
        let name = unsafe { CStr::from_ptr(entry.pw_name) };
        return named(Some(name.to_string_lossy().into_owned()));
    }
}

fn gethostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    named(std::str::from_utf8(&buf[..end]).ok().map(str::to_owned))
}

fn uname_nodename() -> Option<String> {
    // SAFETY: an all-zero utsname is a valid buffer for uname to fill.
    let mut names: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `names` is a valid, writable utsname.
    if unsafe { libc::uname(&mut names) } != 0 {
        return None;
    }
    // SAFETY: uname NUL-terminates each field within its array.
    let node = unsafe { CStr::from_ptr(names.nodename.as_ptr()) };
    named(Some(node.to_string_lossy().into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_is_the_one_id_names() {
        let id = std::process::Command::new("id").arg("-un").output();
        if let Some(out) = id.ok().filter(|o| o.status.success()) {
            let expected = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            assert_eq!(account(), expected);
        } else {
            // No `id`, or an account without a name: the uid stands in.
            assert!(account().starts_with("uid "), "{}", account());
        }
    }

    #[test]
    fn every_host_lookup_agrees_with_the_kernel() {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_owned())
            .ok();
        if let Some(kernel) = kernel.filter(|k| !k.is_empty()) {
            assert_eq!(gethostname().as_deref(), Some(kernel.as_str()));
            assert_eq!(uname_nodename().as_deref(), Some(kernel.as_str()));
            assert_eq!(host(), kernel);
        }
    }
}
