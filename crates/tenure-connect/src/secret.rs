//! A rotated credential on its way from the executor to a target and to the secret sink.
//!
//! [`NewSecret`] is the only form a new password takes inside Tenure. It has no `Display`, no
//! `Serialize`, and a `Debug` that prints a placeholder, so it cannot reach a log line, an error,
//! an audit record, the store or an API answer by accident; its text is wiped from memory when
//! it is dropped. Code that must hand it on (the connector setting it, the sink writing it) asks
//! for it explicitly with [`NewSecret::expose`], and every connector error produced while it is
//! in use is passed through [`NewSecret::scrub`].

use rand::Rng as _;
use zeroize::Zeroizing;

/// How many characters a generated secret has: 40 alphanumerics, about 238 bits.
pub const SECRET_LEN: usize = 40;

/// A freshly generated credential.
#[derive(Clone, PartialEq, Eq)]
pub struct NewSecret(Zeroizing<String>);

impl NewSecret {
    /// A random secret from the operating system's generator: letters and digits only, so it
    /// survives every protocol (SQL literals are not even needed: PostgreSQL gets a SCRAM
    /// verifier computed here, LDAP a value in a BER string).
    pub fn generate() -> Self {
        let text: String =
            rand::rng().sample_iter(rand::distr::Alphanumeric).take(SECRET_LEN).map(char::from).collect();
        Self(Zeroizing::new(text))
    }

    /// The secret's text, for the one place that must send or store it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `message` with every occurrence of the secret replaced, for errors raised while it is
    /// in use.
    pub fn scrub(&self, message: &str) -> String {
        if self.0.is_empty() { message.to_string() } else { message.replace(self.0.as_str(), "[redacted]") }
    }
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewSecret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_random_alphanumeric_and_never_printed() {
        let (a, b) = (NewSecret::generate(), NewSecret::generate());
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), SECRET_LEN);
        assert!(a.expose().chars().all(|c| c.is_ascii_alphanumeric()));
        let debug = format!("{a:?} {:?}", Some(a.clone()));
        assert!(!debug.contains(a.expose()), "{debug}");
        assert_eq!(a.scrub(&format!("login as x with {} failed", a.expose())), "login as x with [redacted] failed");
    }
}
