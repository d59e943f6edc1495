//! Attribute templates: how a target's attribute is made from an identity's attributes.
//!
//! A template is text with `{name}` placeholders, `displayName = "{given_name} {family_name}"`.
//! `{{` and `}}` stand for literal braces. Names are checked when the config loads (an unknown
//! one is a problem with its line, never a silently empty value), so rendering cannot fail: an
//! attribute the identity does not have renders as nothing, and then the result is trimmed, so
//! `"{given_name} {family_name}"` for someone without a given name is just the family name.
//!
//! Templates produce attribute *values*. Where a value reaches an LDAP DN or filter, a SCIM
//! filter or SQL, the connector escapes, quotes or binds it like any other value; a template
//! never builds a DN or a filter as text.

use std::fmt;

/// A parsed template. `Display` gives the source text back.
#[derive(Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(String),
}

impl Template {
    /// Parses `source`. The error says what is wrong, for a config problem.
    pub fn parse(source: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = source.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|&(_, n)| n == '{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().is_some_and(|&(_, n)| n == '}') => {
                    chars.next();
                    text.push('}');
                }
                '}' => return Err(format!("unmatched `}}` at column {}; write `}}}}` for a literal brace", i + 1)),
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for (_, n) in chars.by_ref() {
                        if n == '}' {
                            closed = true;
                            break;
                        }
                        name.push(n);
                    }
                    if !closed {
                        return Err(format!(
                            "`{{` at column {} is not closed; write `{{{{` for a literal brace",
                            i + 1
                        ));
                    }
                    let name = name.trim().to_string();
                    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                        return Err(format!(
                            "`{{{}}}` is not an attribute name (letters, digits, `-` or `_`)",
                            name.escape_default()
                        ));
                    }
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Var(name));
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template { source: source.to_string(), parts })
    }

    /// A template that is only `text` (braces taken literally).
    pub fn literal(text: &str) -> Template {
        let parts = if text.is_empty() { Vec::new() } else { vec![Part::Text(text.to_string())] };
        Template { source: text.replace('{', "{{").replace('}', "}}"), parts }
    }

    /// The attribute names the template uses, in order of appearance.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            Part::Text(_) => None,
        })
    }

    /// The value for an identity whose attributes `lookup` gives. Values are used exactly as
    /// they are; when one is missing it renders as nothing and the result is trimmed, so the
    /// separators around it do not linger.
    pub fn render<'a>(&self, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
        let mut out = String::new();
        let mut missing = false;
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => match lookup(v) {
                    Some(value) => out.push_str(value),
                    None => missing = true,
                },
            }
        }
        if missing { out.trim().to_string() } else { out }
    }

    /// The text the template was parsed from.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Template({:?})", self.source)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(source: &str, attrs: &[(&str, &str)], expect: Result<&str, &str>) {
        let got =
            Template::parse(source).map(|t| t.render(|name| attrs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)));
        match (got, expect) {
            (Ok(v), Ok(want)) => assert_eq!(v, want, "{source:?}"),
            (Err(e), Err(want)) => assert!(e.contains(want), "{source:?}: {e}"),
            (got, want) => panic!("{source:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn templates_render_and_reject_what_they_cannot_mean() {
        let ann = [("given_name", "Ann"), ("family_name", "Lee"), ("email", "ann@example.com")];
        check("{email}", &ann, Ok("ann@example.com"));
        check("{given_name} {family_name}", &ann, Ok("Ann Lee"));
        check("{ given_name }.{family_name}", &ann, Ok("Ann.Lee"));
        check("{given_name} {family_name}", &[("family_name", "Lee")], Ok("Lee"));
        check("{{literal}} {email}", &ann, Ok("{literal} ann@example.com"));
        check("/home/{account}", &[("account", "ann")], Ok("/home/ann"));
        check("", &ann, Ok(""));
        check("{title}", &ann, Ok(""));
        check("{family_name}", &[("family_name", " lead")], Ok(" lead"));
        check("{email", &ann, Err("is not closed"));
        check("email}", &ann, Err("unmatched `}`"));
        check("{}", &ann, Err("is not an attribute name"));
        check("{a b}", &ann, Err("is not an attribute name"));
        check("{a{b}", &ann, Err("is not an attribute name"));
    }

    #[test]
    fn vars_and_source_round_trip() {
        let t = Template::parse("{given_name} {{x}} {family_name}").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.vars().collect::<Vec<_>>(), ["given_name", "family_name"]);
        assert_eq!(t.to_string(), "{given_name} {{x}} {family_name}");
        let l = Template::literal("a{b}");
        assert_eq!(l.render(|_| None), "a{b}");
        assert_eq!(Template::parse(l.as_str()).map(|t| t.render(|_| None)), Ok("a{b}".to_string()));
    }
}
