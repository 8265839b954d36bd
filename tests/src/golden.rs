//! Golden files in tests/golden/: the test fails when an output changes;
//! `UPDATE_GOLDEN=1 cargo test ...` rewrites them instead.

use crate::repo_root;

/// Compare `got` with tests/golden/`name` (a path below it), or write it there under
/// `UPDATE_GOLDEN`.
pub fn golden(name: &str, got: &str) {
    let path = repo_root().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing; run with UPDATE_GOLDEN=1", path.display()));
    assert_eq!(
        got, want,
        "{name} differs; rerun with UPDATE_GOLDEN=1 if intended"
    );
}
