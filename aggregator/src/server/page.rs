//! Page tokens on the wire: where the next page of findings or of status
//! rows starts, as an opaque string a client hands back.
//!
//! A token names a place in the listing order, not an offset, so a page
//! resumes after the last item shown whatever opened or resolved between
//! the calls: nothing is shown twice, and nothing that stayed is skipped.
//! Fields are hex-encoded, so a token is plain ASCII whatever the names
//! hold, and safe to paste into a shell.

use tonic::Status;

use crate::parity::{Kind, Position};

/// The most status rows one answer carries.
pub const MAX_ROWS: u32 = 1_000;

/// The most findings one answer carries. Larger than a page of rows: a
/// page is read as a range of the open findings, but each page still
/// weighs its whole listing (its total and tally, a pass without copies),
/// so fewer, larger pages cost less (docs/benchmarks.md).
pub const MAX_FINDINGS: u32 = 5_000;

/// Status rows per answer when the caller does not say.
pub const DEFAULT_STATUS_ROWS: u32 = 100;

/// The token of a findings page starting after `p`.
pub fn findings_token(p: &Position) -> String {
    let env_b = p
        .env_b
        .as_deref()
        .map_or_else(|| "-".to_owned(), hex::encode);
    format!(
        "f1.{}.{}.{}.{}.{}.{}",
        p.kind.as_str(),
        hex::encode(&p.service),
        hex::encode(&p.env_a),
        env_b,
        hex::encode(&p.key),
        hex::encode(&p.host)
    )
}

/// The position a findings token names; `None` for an empty token (the
/// first page).
pub fn findings_position(token: &str) -> Result<Option<Position>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let fields: Vec<&str> = token.split('.').collect();
    let [version, kind, service, env_a, env_b, key, host] = fields[..] else {
        return Err(not_ours(token, "findings"));
    };
    if version != "f1" {
        return Err(not_ours(token, "findings"));
    }
    let text = |field: &str| {
        hex::decode(field)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| not_ours(token, "findings"))
    };
    Ok(Some(Position {
        kind: kind
            .parse::<Kind>()
            .map_err(|_| not_ours(token, "findings"))?,
        service: text(service)?,
        env_a: text(env_a)?,
        env_b: if env_b == "-" {
            None
        } else {
            Some(text(env_b)?)
        },
        key: text(key)?,
        host: text(host)?,
    }))
}

/// Where a page of status rows resumes: after this row, which drifts or
/// not (the rows that drift come first).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RowPlace {
    /// False for a row that drifts: they sort first.
    pub calm: bool,
    /// The row's service.
    pub service: String,
}

/// The token of a status page starting after `row`.
pub fn status_token(row: &RowPlace) -> String {
    let group = if row.calm { "c" } else { "d" };
    format!("s1.{group}.{}", hex::encode(&row.service))
}

/// The row a status token names; `None` for an empty token.
pub fn status_place(token: &str) -> Result<Option<RowPlace>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let fields: Vec<&str> = token.split('.').collect();
    let ["s1", group, service] = fields[..] else {
        return Err(not_ours(token, "status"));
    };
    let calm = match group {
        "d" => false,
        "c" => true,
        _ => return Err(not_ours(token, "status")),
    };
    let service = hex::decode(service)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| not_ours(token, "status"))?;
    Ok(Some(RowPlace { calm, service }))
}

/// `limit` when it is at most `max`, else INVALID_ARGUMENT naming `field`.
pub fn limit(limit: u32, max: u32, field: &str) -> Result<u32, Status> {
    if limit > max {
        return Err(Status::invalid_argument(format!(
            "{field} is {limit}; an answer carries at most {max}: page through the rest"
        )));
    }
    Ok(limit)
}

fn not_ours(token: &str, what: &str) -> Status {
    let shown: String = token.chars().take(80).collect();
    Status::invalid_argument(format!(
        "page token {:?} is not a {what} page token this aggregator gave; start again without one",
        shown.escape_debug().to_string()
    ))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn arb_position() -> impl Strategy<Value = Position> {
        (
            0usize..Kind::ALL.len(),
            ".*",
            ".*",
            proptest::option::of(".*"),
            ".*",
            ".*",
        )
            .prop_map(|(kind, service, env_a, env_b, key, host)| Position {
                kind: Kind::ALL[kind],
                service,
                env_a,
                env_b,
                key,
                host,
            })
    }

    proptest! {
        /// Whatever the names hold, a token is printable ASCII without
        /// spaces and names the place it was made from.
        #[test]
        fn tokens_name_the_place_they_were_made_from(
            p in arb_position(),
            calm in any::<bool>(),
            service in ".*",
        ) {
            let token = findings_token(&p);
            prop_assert!(token.bytes().all(|b| b.is_ascii_graphic()), "{token}");
            prop_assert_eq!(findings_position(&token).unwrap(), Some(p));
            let row = RowPlace { calm, service };
            let token = status_token(&row);
            prop_assert!(token.bytes().all(|b| b.is_ascii_graphic()), "{token}");
            prop_assert_eq!(status_place(&token).unwrap(), Some(row));
        }

        /// Any other string is refused with INVALID_ARGUMENT, never taken
        /// for a place.
        #[test]
        fn other_strings_are_refused(token in ".+") {
            if let Err(e) = findings_position(&token) {
                prop_assert_eq!(e.code(), tonic::Code::InvalidArgument);
            } else {
                prop_assert!(token.starts_with("f1."), "{token}");
            }
            if let Err(e) = status_place(&token) {
                prop_assert_eq!(e.code(), tonic::Code::InvalidArgument);
            } else {
                prop_assert!(token.starts_with("s1."), "{token}");
            }
        }
    }

    #[test]
    fn a_token_of_the_other_listing_or_a_mangled_one_is_refused() {
        let row = status_token(&RowPlace {
            calm: false,
            service: "shop".into(),
        });
        let e = findings_position(&row).unwrap_err();
        assert!(e.message().contains("not a findings page token"), "{e:?}");
        assert!(status_place("s1.x.73686f70").is_err());
        assert!(status_place("s1.d.zz").is_err());
        assert!(findings_position("f1.nope.-.-.-.-.-").is_err());
        assert_eq!(limit(1_000, MAX_ROWS, "limit").unwrap(), 1_000);
        assert_eq!(
            limit(1_001, MAX_ROWS, "GetStatusRequest.limit")
                .unwrap_err()
                .code(),
            tonic::Code::InvalidArgument
        );
        assert!(limit(MAX_FINDINGS + 1, MAX_FINDINGS, "limit").is_err());
    }
}
