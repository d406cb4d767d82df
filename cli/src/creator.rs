//! Who an import is for: `createdBy` of `leads import`, and the filter of `leads list`.

/// `--created-by` (or `LEADS_CREATED_BY`, through clap), else the user name (`USER`,
/// `USERNAME`, `LOGNAME`). Behind an authorizer only what was given: the API takes the
/// caller's identity from the credentials, and refuses a `createdBy` naming someone else.
pub fn creator(given: Option<String>, names_the_caller: bool) -> Option<String> {
    if given.is_some() || names_the_caller {
        return given;
    }
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
}
