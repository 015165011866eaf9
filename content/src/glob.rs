//! Path globs for `ignore_paths`: `**` is any number of path components
//! (none included), `*` any text within one component, `?` one character.
//! A leading `/` is optional: paths are matched from the image's root.

/// A compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    text: String,
    parts: Vec<String>,
}

impl Glob {
    /// Parses `text`.
    pub fn new(text: &str) -> Self {
        Glob {
            text: text.to_owned(),
            parts: text
                .split('/')
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }

    /// The glob as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `path` (no leading `/`) matches.
    pub fn matches(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        match_parts(&self.parts, &parts)
    }
}

/// The defaults of issue 19: caches, package lists, temporary files.
pub fn default_ignores() -> Vec<Glob> {
    [
        "/var/cache/**",
        "/var/lib/apt/lists/**",
        "/tmp/**",
        "**/__pycache__/**",
    ]
    .into_iter()
    .map(Glob::new)
    .collect()
}

fn match_parts(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_parts(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((p, path_rest)) => {
                match_component(first.as_bytes(), p.as_bytes()) && match_parts(rest, path_rest)
            }
            None => false,
        },
    }
}

/// `*` and `?` within one component, iteratively (no exponential case).
fn match_component(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_ignores_match_what_they_say() {
        let ignores = default_ignores();
        let ignored = |p: &str| ignores.iter().any(|g| g.matches(p));
        assert!(ignored("var/cache/apt/pkgcache.bin"));
        assert!(ignored("var/lib/apt/lists/deb.debian.org_dists"));
        assert!(ignored("tmp/x"));
        assert!(ignored("usr/lib/python3/foo/__pycache__/x.cpython-312.pyc"));
        assert!(!ignored("var/lib/dpkg/status"));
        assert!(!ignored("usr/tmp/x"));
        assert!(!ignored("var/cachet/x"));
    }

    #[test]
    fn stars_and_question_marks_stay_within_a_component() {
        assert!(Glob::new("/usr/lib/*.so").matches("usr/lib/libc.so"));
        assert!(!Glob::new("/usr/lib/*.so").matches("usr/lib/x/libc.so"));
        assert!(Glob::new("a/?/c").matches("a/b/c"));
        assert!(Glob::new("**/*.pyc").matches("x/y/z.pyc"));
        assert!(Glob::new("**/*.pyc").matches("z.pyc"));
        assert!(!Glob::new("a*a*a*a*b").matches(&"a".repeat(100)));
    }
}
