//! The public datasets beside the checkout (`../shared/data`, see its README): where they are, and reading one
//! so that a test skips with a message when it is absent.

/// Where the datasets live: `../shared/data` beside the checkout.
pub const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");

/// A dataset file under [`DATA`], or None (with the reason printed) so that tests skip when it is absent.
pub fn read(rel: &str) -> Option<String> {
    let path = format!("{DATA}/{rel}");
    match std::fs::read_to_string(&path) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("skipping: {path}: {e}");
            None
        }
    }
}
