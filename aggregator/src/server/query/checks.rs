//! The names a query gives, checked against what the fleet knows: an
//! unknown one is NOT_FOUND, listing the known ones.

use tonic::Status;

/// `name` when it is one of the `known` environments, else NOT_FOUND
/// listing them.
pub(super) fn known_environment(known: &[String], name: &str) -> Result<(), Status> {
    if known.iter().any(|e| e == name) {
        return Ok(());
    }
    Err(Status::not_found(format!(
        "environment {name:?} is unknown; known environments: {}",
        list(known)
    )))
}

/// `name` when it is one of the `known` services, else NOT_FOUND listing
/// them.
pub(super) fn known_service(known: &[String], name: &str) -> Result<(), Status> {
    if known.iter().any(|s| s == name) {
        return Ok(());
    }
    Err(Status::not_found(format!(
        "service {name:?} is not running in any environment; known services: {}",
        list(known)
    )))
}

pub(super) fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none (no agent has reported yet)".to_owned()
    } else {
        names.join(", ")
    }
}

pub(super) fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}
