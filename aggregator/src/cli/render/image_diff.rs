//! `image-diff` as text: the two images, the verdict, then each section
//! `--type` selects.

use envparity_content::threshold::{bytes, signed_bytes, thousands};

use super::Out;
use super::paint::Tone;
use super::table::Table;
use super::text::{sanitize_lines, short};
use crate::cli::image_diff::{DiffType, ImageDiffReport};

/// Changed paths listed in a table unless `--type file` asks for all.
const FILES_SHOWN: usize = 20;

impl Out {
    /// `envparity image-diff`.
    pub fn image_diff(&self, r: &ImageDiffReport, types: &[DiffType]) -> anyhow::Result<()> {
        if self.structured(r)? {
            return Ok(());
        }
        let plain = |s: &str, _: &Out| s.to_owned();
        let mut s = String::new();
        for (label, side) in [("A", &r.a), ("B", &r.b)] {
            let os = side
                .os
                .as_ref()
                .map_or(String::new(), |o| format!(", {}", o.pretty_name));
            s.push_str(&format!(
                "{label}: {} ({} {}{os}, {}, {} files)\n",
                side.name,
                short(&side.id),
                side.platform,
                bytes(side.size),
                thousands(side.files)
            ));
        }
        let verdict = if r.verdict.within {
            self.paint("WITHIN", Tone::Ok)
        } else {
            self.paint("BEYOND", Tone::Critical)
        };
        let mut out = sanitize_lines(&s);
        out.push_str(&format!(
            "{verdict} {}\n",
            super::sanitize(&r.verdict.summary)
        ));
        let mut s = String::new();
        if let Some(size) = &r.size {
            s.push_str(&format!(
                "\nsize: {} -> {} ({}), drift score {:.3}, {:.1}% of files changed\n",
                bytes(size.size_a),
                bytes(size.size_b),
                signed_bytes(size.size_delta),
                size.drift_score,
                size.file_fraction * 100.0
            ));
        }
        out.push_str(&sanitize_lines(&s));
        if let Some(runtimes) = r.runtimes.as_ref().filter(|v| !v.is_empty()) {
            out.push_str("\nruntimes:\n");
            let mut t = Table::new(&["RUNTIME", "A", "B", ""]);
            for rt in runtimes {
                let mark = if rt.differs { "differs" } else { "" };
                t.row(
                    vec![
                        rt.name.clone(),
                        rt.a.clone().unwrap_or_else(|| "-".into()),
                        rt.b.clone().unwrap_or_else(|| "-".into()),
                        mark.into(),
                    ],
                    move |_, text, out: &Out| plain(text, out),
                );
            }
            out.push_str(&t.render(self));
        }
        if let Some(packages) = &r.packages {
            for p in packages.iter().filter(|p| p.total() > 0) {
                out.push_str(&format!(
                    "\npackages ({}): {} in A, {} in B; +{} -{} ~{}\n",
                    p.ecosystem.name(),
                    p.count_a,
                    p.count_b,
                    p.added.len(),
                    p.removed.len(),
                    p.changed.len()
                ));
                let mut t = Table::new(&["", "PACKAGE", "A", "B", ""]);
                for c in &p.changed {
                    t.row(
                        vec![
                            "~".into(),
                            c.name.clone(),
                            c.from.clone(),
                            c.to.clone(),
                            c.direction.into(),
                        ],
                        plain_cell,
                    );
                }
                for a in &p.added {
                    t.row(
                        vec![
                            "+".into(),
                            a.name.clone(),
                            "-".into(),
                            a.version.clone(),
                            String::new(),
                        ],
                        plain_cell,
                    );
                }
                for rm in &p.removed {
                    t.row(
                        vec![
                            "-".into(),
                            rm.name.clone(),
                            rm.version.clone(),
                            "-".into(),
                            String::new(),
                        ],
                        plain_cell,
                    );
                }
                out.push_str(&t.render(self));
            }
        }
        if let Some(files) = &r.files {
            out.push_str(&format!(
                "\nfiles: +{} -{} ~{} ({} ignored), {} changed\n",
                thousands(files.added),
                thousands(files.removed),
                thousands(files.changed),
                thousands(files.ignored),
                bytes(files.bytes_changed)
            ));
            if let Some(dirs) = r.top_dirs.as_ref().filter(|d| !d.is_empty()) {
                let mut t = Table::new(&["DIRECTORY", "FILES", "BYTES"]);
                for d in dirs {
                    t.row(
                        vec![
                            format!("/{}", d.dir.trim_start_matches('/')),
                            thousands(d.files),
                            bytes(d.bytes),
                        ],
                        plain_cell,
                    );
                }
                out.push_str(&t.render(self));
            }
            if let Some(changes) = r.file_changes.as_ref().filter(|c| !c.is_empty()) {
                let all = types.contains(&DiffType::File);
                let shown = if all {
                    changes.len()
                } else {
                    changes.len().min(FILES_SHOWN)
                };
                let mut t = Table::new(&["", "PATH", "A", "B", "LAYER", "WHAT"]);
                for c in &changes[..shown] {
                    let mark = match c.change {
                        envparity_content::diff::FileChangeKind::Added => "+",
                        envparity_content::diff::FileChangeKind::Removed => "-",
                        envparity_content::diff::FileChangeKind::Changed => "~",
                    };
                    let size = |s: Option<u64>| s.map_or_else(|| "-".into(), bytes);
                    t.row(
                        vec![
                            mark.into(),
                            format!("/{}", c.path),
                            size(c.size_a),
                            size(c.size_b),
                            c.layer.to_string(),
                            c.what.join(","),
                        ],
                        plain_cell,
                    );
                }
                out.push_str(&t.render(self));
                if shown < changes.len() {
                    out.push_str(&format!(
                        "... and {} more (--type file lists every path)\n",
                        thousands((changes.len() - shown) as u64)
                    ));
                }
            }
        }
        if let Some(layers) = &r.layers {
            let mut s = format!("\nlayers: {} shared", layers.shared);
            match layers.diverges_at {
                None => s.push_str(", the same stacks\n"),
                Some(at) => {
                    s.push_str(&format!("; they diverge at layer {at}\n"));
                    let dash = |c: &Option<String>| c.clone().unwrap_or_else(|| "-".into());
                    s.push_str(&format!(
                        "  A: {}\n  B: {}\n",
                        dash(&layers.created_by_a),
                        dash(&layers.created_by_b)
                    ));
                }
            }
            out.push_str(&sanitize_lines(&s));
        }
        for (label, side) in [("A", &r.a), ("B", &r.b)] {
            if !side.layers.is_empty() {
                out.push_str(&format!("\nhistory of {label}:\n"));
                let mut t = Table::new(&["#", "LAYER", "SIZE", "CREATED BY"]);
                for (i, l) in side.layers.iter().enumerate() {
                    t.row(
                        vec![
                            i.to_string(),
                            short(&l.diff_id),
                            bytes(l.size),
                            l.created_by.clone().unwrap_or_else(|| "-".into()),
                        ],
                        plain_cell,
                    );
                }
                out.push_str(&t.render(self));
            }
        }
        let mut s = String::new();
        for (label, side) in [("A", &r.a), ("B", &r.b)] {
            for note in &side.notes {
                s.push_str(&format!("note ({label}): {note}\n"));
            }
        }
        if !s.is_empty() {
            out.push('\n');
            out.push_str(&sanitize_lines(&s));
        }
        self.emit(&out)
    }
}

fn plain_cell(_: usize, text: &str, _: &Out) -> String {
    text.to_owned()
}

#[cfg(test)]
mod tests {
    use envparity_content::fixture::{FixtureImage, docker_save};
    use envparity_content::tar::build::file;
    use envparity_content::{
        DigestKey, ImageContent, Limits, Thresholds, default_ignores, diff, judge, read_archive,
    };

    use crate::cli::Format;
    use crate::cli::image_diff::{DiffType, ImageDiffReport};
    use crate::cli::render::Out;

    fn report(types: &[DiffType]) -> ImageDiffReport {
        let a = FixtureImage::new("app:1")
            .env("NODE_VERSION=20.10.0")
            .layer("ADD rootfs /", vec![file("app/main.js", b"1")]);
        let b = FixtureImage::new("app:2")
            .env("NODE_VERSION=21.0.0")
            .layer("ADD rootfs /", vec![file("app/main.js", b"22")])
            .layer(
                "COPY evil",
                vec![
                    file("app/\u{1b}[2Jevil", b"x"),
                    file(
                        "app/node_modules/x/package.json",
                        br#"{"name":"x","version":"1.0.0"}"#,
                    ),
                ],
            );
        let archive = read_archive(
            &docker_save(&[a, b])[..],
            "t.tar",
            &Limits::default(),
            &DigestKey::Plain,
        )
        .unwrap();
        let limits = Limits::default();
        let ia = ImageContent::analyse("app:1", archive.image("app:1").unwrap(), &limits);
        let ib = ImageContent::analyse("app:2", archive.image("app:2").unwrap(), &limits);
        let d = diff(&ia, &ib, &default_ignores());
        let verdict = judge(&d, &Thresholds::default());
        ImageDiffReport::new(d, verdict, Thresholds::default(), &default_ignores(), types)
    }

    #[test]
    fn the_table_names_the_verdict_runtimes_packages_and_files_and_escapes_paths() {
        let out = Out::buffered(Format::Table, false);
        out.image_diff(&report(&[]), &[]).unwrap();
        let text = out.take();
        assert!(
            text.contains("BEYOND the images differ (no threshold set)"),
            "{text}"
        );
        assert!(text.contains("node     20.10.0  21.0.0  differs"), "{text}");
        assert!(
            text.contains("packages (node): 0 in A, 1 in B; +1 -0 ~0"),
            "{text}"
        );
        assert!(text.contains("files: +2 -0 ~1 (0 ignored)"), "{text}");
        assert!(
            text.contains("layers: 0 shared; they diverge at layer 0"),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(text.contains("\\u{1b}[2Jevil"), "{text}");
    }

    #[test]
    fn json_and_yaml_carry_only_the_selected_types() {
        let out = Out::buffered(Format::Json, false);
        let r = report(&[DiffType::Runtime]);
        out.image_diff(&r, &[DiffType::Runtime]).unwrap();
        let json: serde_json::Value = serde_json::from_str(&out.take()).unwrap();
        assert_eq!(json["schema_version"], 1);
        assert_eq!(json["runtimes"][0]["b"], "21.0.0");
        assert_eq!(json["verdict"]["within"], false);
        assert!(
            json.get("file_changes").is_none() && json.get("packages").is_none(),
            "{json:#}"
        );
        let out = Out::buffered(Format::Yaml, false);
        out.image_diff(&r, &[DiffType::Runtime]).unwrap();
        let yaml: serde_json::Value = serde_norway::from_str(&out.take()).unwrap();
        assert_eq!(yaml["runtimes"], json["runtimes"]);
    }
}
