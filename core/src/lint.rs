//! Findings about an input that are not fatal: each has a stable id, a severity and
//! a one-line explanation. Produced by the uki, authenticode and disk modules.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Lint {
    /// Stable identifier, kebab-case, e.g. `virtual-size-exceeds-raw`.
    pub id: &'static str,
    pub severity: Severity,
    /// One line saying what is wrong and why it matters.
    pub message: String,
}

impl Lint {
    pub fn new(id: &'static str, severity: Severity, message: impl Into<String>) -> Self {
        Lint {
            id,
            severity,
            message: message.into(),
        }
    }
}
