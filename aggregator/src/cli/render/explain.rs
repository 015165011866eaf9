//! `explain` as text: each side's images and what they say about
//! themselves, the layers they share, then the replicas' configuration
//! files as keys × environments (the grid `service` prints too).

use super::Out;
use super::text::sanitize_lines;
use crate::cli::output::Explain;

impl Out {
    /// `envparity explain`.
    pub fn explain(&self, e: &Explain) -> anyhow::Result<()> {
        if self.structured(e)? {
            return Ok(());
        }
        let mut s = format!(
            "{}: {} vs {}: {}\n",
            e.service,
            e.a.environment,
            e.b.environment,
            if e.same_content {
                "same content"
            } else {
                "different content"
            }
        );
        let field = |s: &mut String, name: &str, v: &str| {
            if !v.is_empty() {
                s.push_str(&format!("    {name:<13} {v}\n"));
            }
        };
        for side in [&e.a, &e.b] {
            s.push_str(&format!("\n{}:\n", side.environment));
            if side.images.is_empty() {
                s.push_str("  (the service does not run here)\n");
            }
            for i in &side.images {
                s.push_str(&format!("  {} on {}\n", i.reference, i.hosts.join(", ")));
                field(&mut s, "digest", &i.digest);
                field(&mut s, "image id", &i.image_id);
                field(&mut s, "architecture", &i.architecture);
                field(&mut s, "created", &i.created);
                field(&mut s, "revision", &i.revision);
                field(&mut s, "version", &i.version);
                field(&mut s, "base digest", &i.base_digest);
                field(&mut s, "source", &i.source);
                field(&mut s, "layers", &i.layer_count.to_string());
            }
        }
        match &e.shared_layers {
            Some(l) if l.shared == l.a_total && l.shared == l.b_total => {
                s.push_str(&format!("\nlayers: all {} identical\n", l.shared));
            }
            Some(l) if l.shared == 0 => s.push_str(&format!(
                "\nlayers: none shared ({} vs {}): different base image\n",
                l.a_total, l.b_total
            )),
            Some(l) => s.push_str(&format!(
                "\nlayers: the bottom {} are shared (same base); they diverge from layer {} ({} vs {} layers)\n",
                l.shared,
                l.shared + 1,
                l.a_total,
                l.b_total
            )),
            None => {}
        }
        let mut s = sanitize_lines(&s);
        let replicas: Vec<_> = e
            .replicas
            .iter()
            .map(|r| (r.environment.as_str(), r.config_files.as_deref()))
            .collect();
        if let Some(grid) = self.config_grid(&replicas) {
            s.push_str("\nconfiguration files, keys × environments:\n");
            s.push_str(&grid);
        }
        self.emit(&s)
    }
}
