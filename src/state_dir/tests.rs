use super::*;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};

#[test]
fn writes_refuse_a_symlink_and_leave_its_target_alone() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    fs::write(&victim, "precious\n").unwrap();
    let link = dir.path().join("supervisor.log");
    symlink(&victim, &link).unwrap();
    let e = open_append(&link).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    let e = open_rw(&link).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    let e = open_read(&link).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    // An atomic write replaces the link itself.
    write_atomic(&link, b"new\n").unwrap();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(fs::read_to_string(&link).unwrap(), "new\n");
    assert!(!fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn a_planted_hard_link_is_not_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    fs::write(&victim, "precious\n").unwrap();
    let planted = dir.path().join("sysg.pid");
    fs::hard_link(&victim, &planted).unwrap();
    let e = open_rw(&planted).unwrap_err();
    assert!(e.to_string().contains("hard links"), "{e}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
}

#[test]
fn a_symlinked_parent_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    fs::create_dir(&real).unwrap();
    let logs = dir.path().join("logs");
    symlink(&real, &logs).unwrap();
    let e = open_append(&logs.join("a_stdout.log")).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert!(fs::read_dir(&real).unwrap().next().is_none());
}

#[test]
fn prepare_creates_tightens_and_refuses_a_symlinked_logs_dir() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::new(dir.path().join("a/b/st"));
    prepare(&paths).unwrap();
    assert!(paths.log_dir().is_dir());
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&paths.dir), 0o700);
    fs::set_permissions(&paths.dir, fs::Permissions::from_mode(0o755)).unwrap();
    prepare(&paths).unwrap();
    assert_eq!(mode(&paths.dir), 0o700);

    let other = Paths::new(dir.path().join("other"));
    fs::create_dir(&other.dir).unwrap();
    symlink(dir.path(), other.log_dir()).unwrap();
    let e = prepare(&other).unwrap_err().to_string();
    assert!(e.contains("logs") && e.contains("symbolic link"), "{e}");
}
