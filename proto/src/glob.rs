//! The one glob both ends match names and paths with: `*` stands for any
//! run of characters (including none and `/`), everything else matches
//! itself, case-sensitively. The agent's `--clear-env` and `--clear-config`
//! allowlists and config file include/exclude globs, and the policy's
//! configuration key patterns, all use it.

/// Matches `name` against `pattern`.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p = pattern.as_bytes();
    let n = name.as_bytes();
    // Iterative wildcard matching with single-star backtracking: linear
    // in practice, no recursion on hostile patterns.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}
