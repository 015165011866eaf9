//! The mechanism on a small table of its own: precedence, errors naming
//! their source, the file's strictness, `--help` and the report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Command;
use proptest::prelude::*;
use serde::Deserialize;

use crate::{Error, Flags, List, Origin, Setting, Show, Sources, parse};

fn small(text: &str) -> Result<u32, String> {
    let n: u32 = text
        .parse()
        .map_err(|e| format!("invalid count {text:?}: {e}"))?;
    Ok(n)
}

fn below_100(n: u32) -> Result<u32, String> {
    if n < 100 {
        Ok(n)
    } else {
        Err(format!("{n} is too many (at most 99)"))
    }
}

/// A nested table, as the aggregator's `[alerts]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Nested {
    name: String,
    #[serde(default)]
    items: Vec<u32>,
}

impl Show for Nested {
    fn show(&self) -> String {
        format!("{} ({} items)", self.name, self.items.len())
    }
}

crate::declare! {
    TABLE;
    CONFIG: Setting<PathBuf> = Setting::path("config")
        .flag("config")
        .var("T_CONFIG")
        .not_in_file()
        .help("The config file.");
    COUNT: Setting<u32> = Setting::new("count", small)
        .flag("count")
        .var("T_COUNT")
        .number()
        .check(below_100)
        .default(|| 7)
        .help("How many.");
    NAME: Setting<String> = Setting::new("name", parse::text)
        .flag("name")
        .var("T_NAME")
        .required()
        .help("A name.");
    WAIT: Setting<Duration> = Setting::new("wait", parse::positive_duration)
        .flag("wait")
        .var("T_WAIT")
        .help("How long.");
    DIR: Setting<PathBuf> = Setting::path("dir").flag("dir").var("T_DIR").help("A directory.");
    TAGS: List<String> = Setting::list("tags", parse::text)
        .flag("tag")
        .delimiter(',')
        .var("T_TAGS")
        .help("Tags.");
    LOUD: Setting<bool> = Setting::switch("loud").flag("loud").var("T_LOUD").help("Louder.");
    SHARED: Setting<bool> = Setting::switch("shared")
        .flag("shared")
        .inherited()
        .var("T_SHARED");
    TOKEN: Setting<String> = Setting::new("token", parse::text).var("T_TOKEN").secret();
    HOST: Setting<String> = Setting::new("host", parse::text)
        .flag("host")
        .var("T_HOST")
        .fallback_var("OTHER_HOST")
        .default(|| "localhost".to_owned());
    NESTED: Setting<Nested> = Setting::table("nested");
}

fn command() -> Command {
    TABLE.augment(
        Command::new("t")
            .no_binary_name(true)
            .arg(
                clap::Arg::new("shared")
                    .long("shared")
                    .action(clap::ArgAction::SetTrue)
                    .global(true),
            )
            .subcommand(Command::new("sub")),
        true,
    )
}

fn flags(args: &[&str]) -> Flags {
    command()
        .try_get_matches_from(args)
        .expect("valid args")
        .into()
}

/// The sources of `args`, `env` and, when given, a file holding `file`.
struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Self {
        Case {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn file(&self, text: &str) -> String {
        let path = self.dir.path().join("t.toml");
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    fn resolve<T: Clone>(
        &self,
        setting: &Setting<T, impl Sized>,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Option<crate::Resolved<T>>, Error> {
        let flags = flags(args);
        let env: BTreeMap<&str, &str> = env.iter().copied().collect();
        let sources = Sources::new(&TABLE, &flags, &env).open(&CONFIG)?;
        sources.get(setting)
    }
}

proptest! {
    /// Whatever subset of flag, variable and file sets a setting, the first
    /// of them in that order gives the value, and the origin says which;
    /// with none, the default applies.
    #[test]
    fn the_first_source_that_sets_a_setting_wins(
        flag in proptest::option::of(0u32..100),
        var in proptest::option::of(0u32..100),
        file in proptest::option::of(0u32..100),
    ) {
        let case = Case::new();
        let mut args: Vec<String> = Vec::new();
        let mut env: Vec<(&str, String)> = Vec::new();
        if let Some(n) = flag {
            args.extend(["--count".to_owned(), n.to_string()]);
        }
        if let Some(n) = var {
            env.push(("T_COUNT", n.to_string()));
        }
        let text = file.map_or_else(String::new, |n| format!("name = \"x\"\ncount = {n}\n"));
        env.push(("T_CONFIG", case.file(&text)));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let got = case.resolve(&COUNT, &args, &env).unwrap().unwrap();
        let (value, origin) = match (flag, var, file) {
            (Some(n), _, _) => (n, Origin::Flag("count")),
            (None, Some(n), _) => (n, Origin::Env("T_COUNT")),
            (None, None, Some(n)) => (
                n,
                Origin::File { path: case.dir.path().join("t.toml"), key: "count", line: 2 },
            ),
            (None, None, None) => (7, Origin::Default("count")),
        };
        prop_assert_eq!(got.value, value);
        prop_assert_eq!(got.origin, origin);
    }

    /// A bad value is an error that starts with where it came from, whichever
    /// source that is, even when the value parses but fails its check.
    #[test]
    fn a_bad_value_names_its_source(source in 0usize..3, parses in any::<bool>()) {
        let case = Case::new();
        let bad = if parses { "150" } else { "many" };
        let path = case.file(&if source == 2 { format!("\n\ncount = \"{bad}\"\n") } else { String::new() });
        let mut env = vec![("T_CONFIG", path.as_str())];
        let mut args = Vec::new();
        match source {
            0 => args.extend(["--count", bad]),
            1 => env.push(("T_COUNT", bad)),
            _ => {}
        }
        if source == 0 && !parses {
            // A flag that does not parse is clap's usage error, naming it.
            let err = command().try_get_matches_from(&args).unwrap_err().to_string();
            prop_assert!(err.contains("--count"), "{}", err);
            return Ok(());
        }
        let err = case.resolve(&COUNT, &args, &env).unwrap_err().to_string();
        let prefix = match source {
            0 => "--count: ".to_owned(),
            1 => "T_COUNT: ".to_owned(),
            _ => format!("config file {path}, line 3: count: "),
        };
        prop_assert!(err.starts_with(&prefix), "{} does not start with {}", err, prefix);
        prop_assert!(err.contains(bad), "{}", err);
        prop_assert!(!err.contains('\n'), "one line: {}", err);
    }
}

#[test]
fn missing_required_setting_names_every_way_to_set_it() {
    let want = "--name is required (or set T_NAME, or `name` in the config file)";
    let err = Case::new().resolve(&NAME, &[], &[]).unwrap_err();
    assert_eq!(err.to_string(), want);
    let flags = Flags::default();
    let env = BTreeMap::<&str, &str>::new();
    let sources = Sources::new(&TABLE, &flags, &env);
    assert_eq!(sources.value(&NAME).unwrap_err().to_string(), want);
    assert_eq!(
        sources.value(&WAIT).unwrap_err().to_string(),
        "--wait is required (or set T_WAIT, or `wait` in the config file)",
        "value() of a setting without a default"
    );
    assert!(
        sources.get(&WAIT).unwrap().is_none(),
        "get() of an optional one"
    );
}

#[test]
fn unknown_file_key_names_the_file_line_and_key() {
    let case = Case::new();
    let path = case.file("name = \"x\"\n\ncont = 3\n");
    let err = case.resolve(&NAME, &["--config", &path], &[]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::FileParse {
                line: 3,
                column: 1,
                ..
            }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("config file {path}, line 3, column 1: unknown field `cont`, expected one of `count`, `name`")),
        "{msg}"
    );
}

#[test]
fn a_bad_file_value_is_refused_even_where_a_flag_overrides_it() {
    let case = Case::new();
    let path = case.file("wait = \"soon\"\n");
    let err = case
        .resolve(&WAIT, &["--config", &path, "--wait", "5s"], &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "config file {path}, line 1: wait: invalid duration \"soon\""
        )),
        "{err}"
    );
    let path = case.file("wait = 5\n");
    let err = case
        .resolve(&WAIT, &["--config", &path], &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("line 1: wait: invalid type: integer `5`, expected a string"),
        "{err}"
    );
}

#[test]
fn syntax_errors_name_the_line() {
    let case = Case::new();
    let path = case.file("name = \"x\ncount = 1\n");
    let err = case.resolve(&NAME, &["--config", &path], &[]).unwrap_err();
    assert!(matches!(err, Error::FileParse { line: 1, .. }), "{err}");
}

#[test]
fn a_missing_file_names_its_path() {
    let case = Case::new();
    let path = case.dir.path().join("nope.toml").display().to_string();
    let err = case
        .resolve(&NAME, &[], &[("T_CONFIG", &path)])
        .unwrap_err();
    assert!(matches!(err, Error::FileRead { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("config file {path}: ")),
        "{err}"
    );
}

#[test]
fn file_paths_are_relative_to_the_file_and_others_are_not() {
    let case = Case::new();
    let path = case.file("dir = \"data\"\n");
    let got = case
        .resolve(&DIR, &["--config", &path], &[])
        .unwrap()
        .unwrap();
    assert_eq!(got.value, case.dir.path().join("data"));
    let got = case
        .resolve(&DIR, &["--config", &path], &[("T_DIR", "data")])
        .unwrap()
        .unwrap();
    assert_eq!(
        got.value,
        Path::new("data"),
        "a variable's is the process's"
    );
}

#[test]
fn lists_come_whole_from_one_source() {
    let case = Case::new();
    let path = case.file("tags = [\"f1\", \"f2\"]\n");
    let get = |args: &[&str], env: &[(&str, &str)]| {
        case.resolve(&TAGS, args, env).unwrap().map(|r| r.value)
    };
    let file = ["--config", path.as_str()];
    assert_eq!(
        get(&file, &[]),
        Some(vec!["f1".to_owned(), "f2".to_owned()])
    );
    assert_eq!(
        get(&file, &[("T_TAGS", "e1, ,e2")]),
        Some(vec!["e1".to_owned(), "e2".to_owned()])
    );
    let flags = ["--config", path.as_str(), "--tag", "a,b", "--tag", "c"];
    assert_eq!(
        get(&flags, &[("T_TAGS", "e1")]),
        Some(vec!["a".to_owned(), "b".to_owned(), "c".to_owned()])
    );
    assert_eq!(get(&[], &[]), None);
}

#[test]
fn switches_follow_the_same_precedence() {
    let case = Case::new();
    let on = case.file("loud = true\n");
    let get =
        |args: &[&str], env: &[(&str, &str)]| case.resolve(&LOUD, args, env).unwrap().unwrap();
    assert!(!get(&[], &[]).value, "off by default");
    assert!(get(&["--config", &on], &[]).value);
    let env_off = get(&["--config", &on], &[("T_LOUD", "false")]);
    assert!(!env_off.value, "the variable wins over the file");
    assert_eq!(env_off.origin, Origin::Env("T_LOUD"));
    assert!(get(&["--loud"], &[("T_LOUD", "0")]).value, "the flag wins");
    let err = case
        .resolve(&LOUD, &[], &[("T_LOUD", "maybe")])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("T_LOUD: invalid boolean \"maybe\""),
        "{err}"
    );
}

#[test]
fn an_inherited_flag_is_read_not_declared() {
    assert_eq!(
        command()
            .get_arguments()
            .filter(|a| a.get_id() == "shared")
            .count(),
        1,
        "declared once, by the parent"
    );
    let case = Case::new();
    for args in [&["--shared", "sub"][..], &["sub", "--shared"][..]] {
        let matches = command().try_get_matches_from(args).unwrap();
        let (_, sub) = matches.subcommand().unwrap();
        let flags = Flags::from(sub);
        let env = BTreeMap::<&str, &str>::new();
        let got = Sources::new(&TABLE, &flags, &env)
            .get(&SHARED)
            .unwrap()
            .unwrap();
        assert!(got.value, "{args:?}");
        assert_eq!(got.origin, Origin::Flag("shared"));
    }
    assert!(!case.resolve(&SHARED, &["sub"], &[]).unwrap().unwrap().value);
}

#[test]
fn a_fallback_variable_comes_after_the_file() {
    let case = Case::new();
    let path = case.file("host = \"from-file\"\n");
    let got =
        |args: &[&str], env: &[(&str, &str)]| case.resolve(&HOST, args, env).unwrap().unwrap();
    let other = [("OTHER_HOST", "other")];
    assert_eq!(got(&["--config", &path], &other).value, "from-file");
    let fallback = got(&[], &other);
    assert_eq!(
        (fallback.value.as_str(), fallback.origin),
        ("other", Origin::Env("OTHER_HOST"))
    );
    assert_eq!(
        got(&[], &[("T_HOST", "mine"), ("OTHER_HOST", "other")]).value,
        "mine"
    );
    assert_eq!(got(&[], &[]).value, "localhost");
}

#[test]
fn nested_tables_are_read_by_serde_and_errors_name_their_own_line() {
    let case = Case::new();
    let path = case.file("count = 1\n\n[nested]\nname = \"n\"\nitems = [1, 2]\n");
    let got = case
        .resolve(&NESTED, &["--config", &path], &[])
        .unwrap()
        .unwrap();
    assert_eq!(
        got.value,
        Nested {
            name: "n".into(),
            items: vec![1, 2]
        }
    );
    let path = case.file("[nested]\nname = \"n\"\n\nitem = [1]\n");
    let err = case
        .resolve(&NESTED, &["--config", &path], &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("line 4: nested: unknown field `item`"),
        "{err}"
    );
}

#[test]
fn help_names_each_variable_and_default_once() {
    let help = command().render_long_help().to_string();
    assert!(
        help.contains("How many. [env: T_COUNT] [default: 7]"),
        "{help}"
    );
    assert!(help.contains("--tag <tags>"), "{help}");
    assert!(!help.contains("T_TOKEN"), "no flag, no help: {help}");
    let table = TABLE.markdown();
    assert!(
        table.contains("| `count` | `--count` | `T_COUNT` | 7 | How many. |"),
        "{table}"
    );
    assert!(table.contains("| — | `--config` | `T_CONFIG` |"), "{table}");
}

#[test]
fn the_report_shows_every_setting_asked_for_with_its_origin_and_never_a_secret() {
    let case = Case::new();
    let path = case.file("name = \"from-file\"\n");
    let flags = flags(&["--config", &path, "--count", "3"]);
    let env: BTreeMap<&str, &str> = [("T_TOKEN", "s3cret"), ("T_LOUD", "yes")].into();
    let sources = Sources::new(&TABLE, &flags, &env).open(&CONFIG).unwrap();
    // Asked in another order than the table's: shown in the table's.
    sources.get(&TOKEN).unwrap();
    sources.get(&WAIT).unwrap();
    sources.value(&NAME).unwrap();
    sources.get(&LOUD).unwrap();
    sources.get(&COUNT).unwrap();
    sources.derived(&DIR, PathBuf::from("/derived"), "worked out");
    let mut report = sources.report();
    report.push("summary", "all good");
    let text = report.to_string();
    assert_eq!(
        text,
        format!(
            "configuration is valid (config file {path})\n\
             \x20 config   {path}  (--config)\n\
             \x20 count    3  (--count)\n\
             \x20 name     from-file  (config file, line 1)\n\
             \x20 wait     (not set)\n\
             \x20 dir      /derived  (worked out)\n\
             \x20 loud     true  (T_LOUD)\n\
             \x20 token    <redacted>  (T_TOKEN)\n\
             \x20 summary  all good\n"
        )
    );
    assert!(!text.contains("s3cret"));
}

#[test]
fn the_report_escapes_control_characters() {
    let flags = flags(&["--name", "a\nb\x1b[31m"]);
    let env = BTreeMap::<&str, &str>::new();
    let sources = Sources::new(&TABLE, &flags, &env);
    sources.get(&NAME).unwrap();
    let text = sources.report().to_string();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("a\\nb\\u{1b}[31m"), "{text}");
}

#[test]
fn a_file_needs_no_flags() {
    let case = Case::new();
    let path = case.file("count = \"12\"\nname = \"n\"\n");
    let file = TABLE.read_file(Path::new(&path)).unwrap();
    assert_eq!(file.path(), Path::new(&path));
}

#[test]
fn docs_drift_from_the_declarations_is_caught() {
    let case = Case::new();
    let doc = case.dir.path().join("doc.md");
    let block = |body: &str| {
        format!(
            "# T\n<!-- BEGIN settings t (generated) -->\n{body}<!-- END settings t -->\nafter\n"
        )
    };
    std::fs::write(&doc, block(&TABLE.markdown())).unwrap();
    TABLE.check_doc(&doc, "t").unwrap();
    std::fs::write(&doc, block("| stale |\n")).unwrap();
    let err = TABLE.check_doc(&doc, "t").unwrap_err();
    assert!(
        err.contains("ENVPARITY_BLESS") && err.contains("`T_COUNT`"),
        "{err}"
    );
    let err = TABLE.check_doc(&doc, "other").unwrap_err();
    assert!(err.contains("no line starting"), "{err}");
}
