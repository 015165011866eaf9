//! A page's query parameters, read strictly: a name the page does not take,
//! a name given twice, a value too long or not of its kind is a
//! [`ParamError`] naming the parameter (the page answers 400 with it). An
//! empty value is the same as none, so that an unfilled form field means
//! "no filter".

use std::collections::BTreeMap;

/// The longest value a parameter may have.
pub const MAX_VALUE_BYTES: usize = 1024;

/// A parameter a page cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// A name the page does not know.
    #[error("unknown query parameter {name:?}; this page takes {known}")]
    Unknown {
        /// The name given.
        name: String,
        /// The names the page takes.
        known: String,
    },
    /// A name given more than once.
    #[error("query parameter {name:?} is given more than once")]
    Repeated {
        /// The name.
        name: String,
    },
    /// A value that is not what the parameter takes.
    #[error("query parameter {name:?}: {value:?} is not {expected}")]
    Invalid {
        /// The name.
        name: String,
        /// The value given (cut to 64 characters).
        value: String,
        /// What it should be.
        expected: String,
    },
}

/// The parameters of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    values: BTreeMap<String, String>,
}

impl Params {
    /// Reads `raw` (the URL's query, without `?`), taking only `known`
    /// names.
    pub fn parse(raw: Option<&str>, known: &[&str]) -> Result<Params, ParamError> {
        let mut values = BTreeMap::new();
        for (name, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            if !known.contains(&name.as_ref()) {
                return Err(ParamError::Unknown {
                    name: cut(&name),
                    known: if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    },
                });
            }
            if value.len() > MAX_VALUE_BYTES {
                return Err(ParamError::Invalid {
                    name: name.into_owned(),
                    value: cut(&value),
                    expected: format!("at most {MAX_VALUE_BYTES} bytes long"),
                });
            }
            if values
                .insert(name.to_string(), value.into_owned())
                .is_some()
            {
                return Err(ParamError::Repeated {
                    name: name.into_owned(),
                });
            }
        }
        values.retain(|_, v| !v.is_empty());
        Ok(Params { values })
    }

    /// The text of `name`, if given and not empty.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The text of `name` as an owned string, empty when not given (as the
    /// query API's requests take it).
    pub fn owned(&self, name: &str) -> String {
        self.text(name).unwrap_or_default().to_owned()
    }

    /// `name` as a page number (1 when not given).
    pub fn page(&self, name: &str) -> Result<usize, ParamError> {
        match self.text(name) {
            None => Ok(1),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|&n| (1..=1_000_000).contains(&n))
                .ok_or_else(|| ParamError::Invalid {
                    name: name.to_owned(),
                    value: cut(v),
                    expected: "a page number from 1".to_owned(),
                }),
        }
    }

    /// `name` as one of `choices` (`None` when not given).
    pub fn choice<'c>(
        &self,
        name: &str,
        choices: &[&'c str],
    ) -> Result<Option<&'c str>, ParamError> {
        match self.text(name) {
            None => Ok(None),
            Some(v) => choices
                .iter()
                .find(|c| **c == v)
                .map(|c| Some(*c))
                .ok_or_else(|| ParamError::Invalid {
                    name: name.to_owned(),
                    value: cut(v),
                    expected: format!("one of {}", choices.join(", ")),
                }),
        }
    }
}

/// `s` cut to 64 characters, for messages.
fn cut(s: &str) -> String {
    s.chars().take(64).collect()
}

/// A link to `path` with `params` (those with empty values left out),
/// percent-encoded.
pub fn link(path: &str, params: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params.iter().filter(|(_, v)| !v.is_empty()) {
        query.append_pair(k, v);
    }
    let query = query.finish();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[&str] = &["q", "env", "page"];

    #[test]
    fn an_unknown_parameter_is_named_with_the_known_ones() {
        let err = Params::parse(Some("q=a&colour=red"), KNOWN).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown query parameter \"colour\"; this page takes q, env, page"
        );
    }

    #[test]
    fn a_repeated_parameter_is_refused() {
        let err = Params::parse(Some("env=a&env=b"), KNOWN).unwrap_err();
        assert_eq!(err, ParamError::Repeated { name: "env".into() });
    }

    #[test]
    fn values_are_percent_decoded_and_empty_ones_are_absent() {
        let p = Params::parse(Some("q=a%2Fb+c&env="), KNOWN).unwrap();
        assert_eq!(p.text("q"), Some("a/b c"));
        assert_eq!(p.text("env"), None);
        assert_eq!(p.owned("env"), "");
    }

    #[test]
    fn a_page_is_a_number_from_one() {
        let page = |raw: &str| Params::parse(Some(raw), KNOWN).unwrap().page("page");
        assert_eq!(page(""), Ok(1));
        assert_eq!(page("page=3"), Ok(3));
        for bad in ["page=0", "page=-1", "page=two", "page=99999999999"] {
            let err = page(bad).unwrap_err().to_string();
            assert!(err.contains("query parameter \"page\""), "{err}");
            assert!(err.contains("a page number"), "{err}");
        }
    }

    #[test]
    fn a_choice_names_the_choices() {
        let p = Params::parse(Some("env=maybe"), KNOWN).unwrap();
        let err = p.choice("env", &["yes", "no"]).unwrap_err().to_string();
        assert_eq!(
            err,
            "query parameter \"env\": \"maybe\" is not one of yes, no"
        );
        let p = Params::parse(Some("env=no"), KNOWN).unwrap();
        assert_eq!(p.choice("env", &["yes", "no"]), Ok(Some("no")));
    }

    #[test]
    fn a_value_too_long_is_refused() {
        let raw = format!("q={}", "x".repeat(MAX_VALUE_BYTES + 1));
        let err = Params::parse(Some(&raw), KNOWN).unwrap_err().to_string();
        assert!(err.contains("at most 1024 bytes"), "{err}");
    }

    #[test]
    fn links_encode_their_values_and_drop_empty_ones() {
        assert_eq!(
            link("/service", &[("name", "a&b=<c>"), ("a", "")]),
            "/service?name=a%26b%3D%3Cc%3E"
        );
        assert_eq!(link("/", &[("q", "")]), "/");
    }
}
