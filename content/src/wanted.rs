//! Which files the inventories read: decided while a layer streams by, so
//! that only these are held (up to [`crate::Limits::max_package_file`]).

/// Whether `path` (normalised, no leading `/`) is read by an inventory.
pub fn is_package_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    matches!(
        path,
        "var/lib/dpkg/status" | "lib/apk/db/installed" | "etc/os-release" | "usr/lib/os-release"
    ) || (path.starts_with("var/lib/dpkg/status.d/") && !name.ends_with(".md5sums"))
        || (name == "METADATA" && parent(path).is_some_and(|p| p.ends_with(".dist-info")))
        || (name == "PKG-INFO" && parent(path).is_some_and(|p| p.ends_with(".egg-info")))
        || name.ends_with(".egg-info")
        || (name == "package.json" && is_node_package_dir(parent(path).unwrap_or("")))
}

/// Whether `path` is an rpm database (noted, not parsed).
pub fn is_rpmdb(path: &str) -> bool {
    matches!(
        path,
        "var/lib/rpm/rpmdb.sqlite"
            | "var/lib/rpm/Packages"
            | "var/lib/rpm/Packages.db"
            | "usr/lib/sysimage/rpm/rpmdb.sqlite"
            | "usr/lib/sysimage/rpm/Packages"
            | "usr/lib/sysimage/rpm/Packages.db"
    )
}

fn parent(path: &str) -> Option<&str> {
    path.rsplit_once('/').map(|(p, _)| p)
}

/// `…/node_modules/NAME` or `…/node_modules/@SCOPE/NAME`: a package's own
/// directory, not a folder inside it.
fn is_node_package_dir(dir: &str) -> bool {
    let parts: Vec<&str> = dir.rsplit('/').take(3).collect();
    match parts.as_slice() {
        [_, "node_modules", ..] => !parts[0].starts_with('@'),
        [_, scope, "node_modules"] => scope.starts_with('@'),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_files_are_recognised_and_others_are_not() {
        for yes in [
            "var/lib/dpkg/status",
            "var/lib/dpkg/status.d/libc6",
            "usr/lib/python3.12/site-packages/requests-2.31.0.dist-info/METADATA",
            "usr/lib/python3/dist-packages/six-1.16.0.egg-info",
            "usr/lib/python3/dist-packages/foo.egg-info/PKG-INFO",
            "app/node_modules/express/package.json",
            "app/node_modules/@types/node/package.json",
            "app/node_modules/a/node_modules/b/package.json",
            "lib/apk/db/installed",
            "usr/lib/os-release",
        ] {
            assert!(is_package_file(yes), "{yes}");
        }
        for no in [
            "var/lib/dpkg/status-old",
            "var/lib/dpkg/status.d/libc6.md5sums",
            "app/package.json",
            "app/node_modules/express/lib/package.json",
            "app/node_modules/@types/package.json",
            "usr/share/doc/METADATA",
        ] {
            assert!(!is_package_file(no), "{no}");
        }
    }
}
