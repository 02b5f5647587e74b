//! Field paths such as `spec.inlinePolicies.s3.Statement[1].Action`: how every error names the
//! place it is about, shared by the manifest loader and the policy grammar.

use std::fmt;

/// One step of a field path: a mapping key or a list index (0-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A field path, rendered as users write it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    pub fn key(&self, k: impl Into<String>) -> FieldPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(k.into()));
        FieldPath(segs)
    }

    pub fn index(&self, i: usize) -> FieldPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(i));
        FieldPath(segs)
    }

    /// This path followed by `rest`.
    pub fn join(&self, rest: &FieldPath) -> FieldPath {
        FieldPath(self.0.iter().chain(&rest.0).cloned().collect())
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_keys_with_dots_and_indexes_in_brackets() {
        let p = FieldPath::default()
            .key("spec")
            .key("inlinePolicies")
            .key("s3")
            .key("Statement")
            .index(1)
            .key("Action");
        assert_eq!(p.to_string(), "spec.inlinePolicies.s3.Statement[1].Action");
        assert_eq!(FieldPath::default().to_string(), "");
    }
}
