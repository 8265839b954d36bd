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

/// How many lints of one id a report lists. A hostile table of 65535 sections
/// would otherwise produce about 200,000 lints (issue 9: memory bounded by the
/// input); a real file has a handful of each.
pub const PER_ID: u64 = 16;

/// Lints as they are found, at most [`PER_ID`] of each id. The rest of an id are
/// counted in one lint of that id, placed where the first one dropped would be.
#[derive(Debug, Default)]
pub struct Lints {
    list: Vec<Lint>,
    ids: Vec<Seen>,
}

#[derive(Debug)]
struct Seen {
    id: &'static str,
    count: u64,
    /// Index in `list` of the closing lint, once one was dropped.
    summary: Option<usize>,
}

impl Lints {
    pub fn push(&mut self, lint: Lint) {
        self.add(lint, 0);
    }

    /// Add `lint`, which stands for itself and `more` lints of its id already dropped.
    fn add(&mut self, lint: Lint, more: u64) {
        let at = match self.ids.iter().position(|s| s.id == lint.id) {
            Some(at) => at,
            None => {
                self.ids.push(Seen {
                    id: lint.id,
                    count: 0,
                    summary: None,
                });
                self.ids.len().saturating_sub(1)
            }
        };
        let Some(seen) = self.ids.get_mut(at) else {
            return;
        };
        seen.count = seen.count.saturating_add(1).saturating_add(more);
        if seen.count <= PER_ID {
            self.list.push(lint);
            return;
        }
        match seen.summary.and_then(|i| self.list.get_mut(i)) {
            Some(s) => s.severity = s.severity.max(lint.severity),
            None => {
                seen.summary = Some(self.list.len());
                self.list
                    .push(Lint::new(lint.id, lint.severity, String::new()));
            }
        }
    }

    /// Move `other`'s lints after these, as if they had been pushed here.
    pub fn append(&mut self, other: Lints) {
        for (i, lint) in other.list.into_iter().enumerate() {
            let more = other
                .ids
                .iter()
                .find(|s| s.summary == Some(i))
                .map_or(0, |s| s.count.saturating_sub(PER_ID).saturating_sub(1));
            self.add(lint, more);
        }
    }

    pub fn into_vec(self) -> Vec<Lint> {
        let mut list = self.list;
        for s in &self.ids {
            if let Some(l) = s.summary.and_then(|i| list.get_mut(i)) {
                l.message = format!(
                    "... and {} more {} lints (only the first {PER_ID} of an id are listed)",
                    s.count.saturating_sub(PER_ID),
                    s.id
                );
            }
        }
        list
    }
}

impl Extend<Lint> for Lints {
    fn extend<I: IntoIterator<Item = Lint>>(&mut self, iter: I) {
        for l in iter {
            self.push(l);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_each_id_and_counts_the_rest() {
        let mut l = Lints::default();
        for i in 0..100 {
            l.push(Lint::new("a", Severity::Info, format!("a{i}")));
            if i == 50 {
                l.push(Lint::new("a", Severity::Error, "bad"));
            }
            if i < 3 {
                l.push(Lint::new("b", Severity::Warning, "b"));
            }
        }
        let v = l.into_vec();
        assert_eq!(v.iter().filter(|l| l.id == "b").count(), 3);
        let a: Vec<&Lint> = v.iter().filter(|l| l.id == "a").collect();
        assert_eq!(a.len(), PER_ID as usize + 1);
        assert_eq!(a[15].message, "a15");
        assert_eq!(a[16].severity, Severity::Error);
        assert_eq!(
            a[16].message,
            "... and 85 more a lints (only the first 16 of an id are listed)"
        );
    }

    #[test]
    fn append_keeps_the_counts() {
        let mut x = Lints::default();
        let mut y = Lints::default();
        for i in 0..10 {
            x.push(Lint::new("a", Severity::Info, format!("x{i}")));
        }
        for i in 0..30 {
            y.push(Lint::new("a", Severity::Warning, format!("y{i}")));
            y.push(Lint::new("b", Severity::Info, "b"));
        }
        x.append(y);
        let v = x.into_vec();
        let a: Vec<&Lint> = v.iter().filter(|l| l.id == "a").collect();
        assert_eq!(a.len(), 17);
        assert_eq!(a[15].message, "y5");
        assert_eq!(
            a[16].message,
            "... and 24 more a lints (only the first 16 of an id are listed)"
        );
        assert_eq!(v.iter().filter(|l| l.id == "b").count(), 17);
        assert!(v.last().unwrap().message.starts_with("... and 14 more b"));
    }
}
