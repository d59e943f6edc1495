//! Loading `policy.toml` through the span-preserving document model, so that every problem
//! names its line.

use crate::{ApprovalStage, Cond, DateOp, OnOwnerLeave, Policy, Role, Sod, SodAction, SodMode, Test};
use chrono::NaiveDate;
use std::collections::HashSet;
use tenure_core::config::Config;
use tenure_core::date::{parse_duration, parse_relative};
use tenure_core::diag::{Problem, Problems};
use tenure_core::doc::{self, Node, Table, Value};
use tenure_core::{AttrType, Entitlement};

struct Ctx<'c, 'p, 's> {
    config: &'c Config,
    today: NaiveDate,
    p: &'p mut Problems<'s>,
}

/// Parses and validates a policy against `config`, resolving relative dates against `today`.
pub fn parse(file: &str, source: &str, config: &Config, today: NaiveDate) -> Result<Policy, Vec<Problem>> {
    let mut problems = Problems::new(file, source);
    let root = match doc::parse(source) {
        Ok(n) => n,
        Err((offset, msg)) => {
            problems.at(offset, format!("invalid TOML: {msg}"));
            return Err(problems.into_vec());
        }
    };
    let mut cx = Ctx { config, today, p: &mut problems };
    let empty = Table::default();
    let root = root.as_table().unwrap_or(&empty);
    for e in &root.entries {
        if !["role", "sod", "mover", "nhi"].contains(&e.key.as_str()) {
            cx.p.at(e.key_span.start, format!("unknown key `{}`; expected role, sod, mover or nhi", e.key));
        }
    }
    let mut roles = Vec::new();
    let mut ids = HashSet::new();
    for (at, t) in tables(root, "role", &mut cx) {
        if let Some(role) = role(at, t, &mut cx) {
            if !ids.insert(role.id.clone()) {
                cx.p.at(at, format!("role `{}` is defined twice", role.id));
            }
            roles.push(role);
        }
    }
    let mut sod = Vec::new();
    for (at, t) in tables(root, "sod", &mut cx) {
        if let Some(s) = sod_rule(at, t, &mut cx) {
            sod.push(s);
        }
    }
    let mut significant = Vec::new();
    if let Some(node) = root.get("mover") {
        if let Some(t) = node.as_table() {
            keys(t, "[mover]", &["significant"], &mut cx);
            for (at, name) in strings(t, "significant", "[mover]", &mut cx) {
                match config.schema.slot(&name) {
                    Some(s) => significant.push(s),
                    None => cx.p.at(at, format!("unknown attribute `{name}` in [mover] significant")),
                }
            }
        } else {
            cx.p.at(node.start(), "`mover` must be a table ([mover])");
        }
    }
    let mut on_owner_leave = OnOwnerLeave::TransferToManager;
    if let Some(node) = root.get("nhi") {
        if let Some(t) = node.as_table() {
            keys(t, "[nhi]", &["on_owner_leave"], &mut cx);
            if let Some(n) = t.get("on_owner_leave") {
                match n.as_str() {
                    Some("transfer_to_manager") => on_owner_leave = OnOwnerLeave::TransferToManager,
                    Some("revoke") => on_owner_leave = OnOwnerLeave::Revoke,
                    _ => cx.p.at(n.start(), "`on_owner_leave` must be \"transfer_to_manager\" or \"revoke\""),
                }
            }
        } else {
            cx.p.at(node.start(), "`nhi` must be a table ([nhi])");
        }
    }
    if !problems.is_empty() {
        return Err(problems.into_vec());
    }
    let mut entitlements: Vec<Entitlement> = Vec::new();
    let mut index: std::collections::HashMap<Entitlement, u32> = std::collections::HashMap::new();
    for role in &mut roles {
        role.grant_ids = role
            .grant
            .iter()
            .map(|e| {
                *index.entry(e.clone()).or_insert_with(|| {
                    entitlements.push(e.clone());
                    u32::try_from(entitlements.len() - 1).unwrap_or(u32::MAX)
                })
            })
            .collect();
    }
    Ok(Policy { roles, entitlements, sod, significant, on_owner_leave })
}

fn tables<'a>(root: &'a Table, key: &str, cx: &mut Ctx<'_, '_, '_>) -> Vec<(usize, &'a Table)> {
    let Some(node) = root.get(key) else {
        return Vec::new();
    };
    let Some(items) = node.as_array() else {
        cx.p.at(node.start(), format!("`{key}` must be an array of tables ([[{key}]])"));
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|n| match n.as_table() {
            Some(t) => Some((n.start(), t)),
            None => {
                cx.p.at(n.start(), format!("each `{key}` must be a table"));
                None
            }
        })
        .collect()
}

fn keys(t: &Table, what: &str, allowed: &[&str], cx: &mut Ctx<'_, '_, '_>) {
    for e in &t.entries {
        if !allowed.contains(&e.key.as_str()) {
            cx.p.at(
                e.key_span.start,
                format!("unknown key `{}` in {what}; expected one of: {}", e.key, allowed.join(", ")),
            );
        }
    }
}

fn strings(t: &Table, key: &str, what: &str, cx: &mut Ctx<'_, '_, '_>) -> Vec<(usize, String)> {
    let Some(node) = t.get(key) else {
        return Vec::new();
    };
    let Some(items) = node.as_array() else {
        cx.p.at(node.start(), format!("`{key}` in {what} must be an array of strings"));
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|n| match n.as_str() {
            Some(s) => Some((n.start(), s.to_string())),
            None => {
                cx.p.at(n.start(), format!("`{key}` in {what} must hold only strings"));
                None
            }
        })
        .collect()
}

fn string(t: &Table, key: &str, what: &str, cx: &mut Ctx<'_, '_, '_>) -> Option<String> {
    let node = t.get(key)?;
    match node.as_str() {
        Some(s) => Some(s.to_string()),
        None => {
            cx.p.at(node.start(), format!("`{key}` in {what} must be a string, not {}", node.type_name()));
            None
        }
    }
}

fn valid_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Validates `TARGET:NAME` against the configured targets.
fn entitlement(at: usize, s: &str, cx: &mut Ctx<'_, '_, '_>) -> Option<Entitlement> {
    let e = match Entitlement::parse(s) {
        Ok(e) => e,
        Err(msg) => {
            cx.p.at(at, msg);
            return None;
        }
    };
    let Some(target) = cx.config.target(&e.target) else {
        let known: Vec<&str> = cx.config.targets.iter().map(|t| t.name.as_str()).collect();
        cx.p.at(
            at,
            format!("entitlement `{s}` names unknown target `{}`; targets are: {}", e.target, known.join(", ")),
        );
        return None;
    };
    if let Some(list) = &target.entitlements
        && !list.contains(&e.name)
    {
        cx.p.at(
            at,
            format!("entitlement `{s}` is not declared in target `{}` (declared: {})", e.target, list.join(", ")),
        );
        return None;
    }
    Some(e)
}

fn role(at: usize, t: &Table, cx: &mut Ctx<'_, '_, '_>) -> Option<Role> {
    keys(
        t,
        "[[role]]",
        &["id", "description", "when", "grant", "privileged", "requestable", "approval", "max_duration"],
        cx,
    );
    let Some(id) = string(t, "id", "[[role]]", cx) else {
        if t.get("id").is_none() {
            cx.p.at(at, "[[role]] is missing `id`");
        }
        return None;
    };
    if !valid_id(&id) {
        cx.p.at(at, format!("role id `{id}` must be letters, digits, `-`, `_` or `.`"));
    }
    let what = format!("role `{id}`");
    let _ = string(t, "description", &what, cx);
    let when = t.get("when").and_then(|n| match n.as_table() {
        Some(w) => Some(cond_table(w, cx)),
        None => {
            cx.p.at(n.start(), format!("`when` in {what} must be a table of conditions"));
            None
        }
    });
    let grant_node = t.get("grant");
    let mut grant = Vec::new();
    for (gat, g) in strings(t, "grant", &what, cx) {
        if let Some(e) = entitlement(gat, &g, cx) {
            grant.push(e);
        }
    }
    if grant_node.is_none() {
        cx.p.at(at, format!("{what} grants nothing: add `grant = [\"TARGET:NAME\"]`"));
    }
    let privileged = match t.get("privileged") {
        None => false,
        Some(Node { value: Value::Bool(b), .. }) => *b,
        Some(n) => {
            cx.p.at(n.start(), format!("`privileged` in {what} must be true or false"));
            false
        }
    };
    let approval = approval_stages(t, &what, cx);
    let max_duration = string(t, "max_duration", &what, cx).and_then(|d| {
        let secs = parse_duration(&d);
        if secs.is_none() {
            let at = t.get("max_duration").map_or(at, Node::start);
            cx.p.at(at, format!("`max_duration` `{d}` is not a duration like `8h`, `30m`, `7d` or `2s`"));
        }
        secs
    });
    let explicit = match t.get("requestable") {
        None => None,
        Some(Node { value: Value::Bool(b), .. }) => Some(*b),
        Some(n) => {
            cx.p.at(n.start(), format!("`requestable` in {what} must be true or false"));
            None
        }
    };
    // Privileged roles, and roles only an approval grants, are requestable unless they say not.
    let requestable = explicit.unwrap_or(!approval.is_empty() && (privileged || when.is_none()));
    if requestable && approval.is_empty() {
        let at = t.get("requestable").map_or(at, Node::start);
        cx.p.at(
            at,
            format!("{what} is requestable but names no approver: add `approval = \"manager\"` or `\"owner:NAME\"`"),
        );
    }
    if when.is_none() && approval.is_empty() {
        cx.p.at(
            at,
            format!("{what} has neither `when` (birthright) nor `approval` (requestable): nobody can ever get it"),
        );
    }
    if privileged && when.is_some() && approval.is_empty() {
        cx.p.at(
            at,
            format!(
                "{what} is privileged but granted by `when` without `approval`; privileged access needs an approver"
            ),
        );
    }
    Some(Role { id, when, grant, privileged, requestable, approval, max_duration, grant_ids: Vec::new() })
}

/// `approval = "manager"`, `"owner:NAME"` or a list of those (the stages, in order).
fn approval_stages(t: &Table, what: &str, cx: &mut Ctx<'_, '_, '_>) -> Vec<ApprovalStage> {
    let Some(node) = t.get("approval") else {
        return Vec::new();
    };
    let items: Vec<(usize, String)> = match &node.value {
        Value::Str(s) => vec![(node.start(), s.clone())],
        Value::Array(_) => strings(t, "approval", what, cx),
        _ => {
            cx.p.at(node.start(), format!("`approval` in {what} must be a string or an array of strings"));
            return Vec::new();
        }
    };
    if items.is_empty() {
        cx.p.at(node.start(), format!("`approval` in {what} names no approver"));
    }
    let mut out = Vec::new();
    for (at, s) in items {
        match s.as_str() {
            "manager" => out.push(ApprovalStage::Manager),
            other => match other.strip_prefix("owner:") {
                Some(name) if valid_id(name) => out.push(ApprovalStage::Owner(name.to_string())),
                _ => cx.p.at(
                    at,
                    format!("approver `{other}` in {what} must be \"manager\" or \"owner:NAME\" (an identity id or username)"),
                ),
            },
        }
    }
    out
}

fn sod_rule(at: usize, t: &Table, cx: &mut Ctx<'_, '_, '_>) -> Option<Sod> {
    keys(t, "[[sod]]", &["id", "description", "conflict", "action", "mode", "owner"], cx);
    let id = string(t, "id", "[[sod]]", cx).unwrap_or_default();
    if id.is_empty() {
        cx.p.at(at, "[[sod]] is missing `id`");
    }
    let what = format!("sod rule `{id}`");
    let mut conflict = Vec::new();
    for (gat, g) in strings(t, "conflict", &what, cx) {
        if let Some(e) = entitlement(gat, &g, cx) {
            conflict.push(e);
        }
    }
    if conflict.len() < 2 {
        cx.p.at(at, format!("{what} needs at least two entitlements in `conflict`"));
    }
    let action = match string(t, "action", &what, cx).as_deref() {
        None | Some("block") => SodAction::Block,
        Some("flag") => SodAction::Flag,
        Some(other) => {
            let at = t.get("action").map_or(at, Node::start);
            cx.p.at(at, format!("`action` `{other}` in {what} must be \"block\" or \"flag\""));
            SodAction::Block
        }
    };
    let mode = match string(t, "mode", &what, cx).as_deref() {
        None | Some("enforce") => SodMode::Enforce,
        Some("record") => SodMode::Record,
        Some(other) => {
            let at = t.get("mode").map_or(at, Node::start);
            cx.p.at(at, format!("`mode` `{other}` in {what} must be \"enforce\" or \"record\""));
            SodMode::Enforce
        }
    };
    let owner = string(t, "owner", &what, cx);
    if let Some(o) = &owner
        && !valid_id(o)
    {
        let at = t.get("owner").map_or(at, Node::start);
        cx.p.at(at, format!("`owner` `{o}` in {what} must be an identity id or username"));
    }
    Some(Sod { id, conflict, action, mode, owner })
}

/// A table of conditions: every entry must hold (AND).
fn cond_table(t: &Table, cx: &mut Ctx<'_, '_, '_>) -> Cond {
    let mut all = Vec::new();
    for e in &t.entries {
        match e.key.as_str() {
            "any" | "all" => {
                let Some(items) = e.node.as_array() else {
                    cx.p.at(e.node.start(), format!("`{}` must be an array of condition tables", e.key));
                    continue;
                };
                let mut subs = Vec::new();
                for item in items {
                    match item.as_table() {
                        Some(st) => subs.push(cond_table(st, cx)),
                        None => cx.p.at(item.start(), format!("each item of `{}` must be a condition table", e.key)),
                    }
                }
                all.push(if e.key == "any" { Cond::Any(subs) } else { Cond::All(subs) });
            }
            "not" => match e.node.as_table() {
                Some(st) => all.push(Cond::Not(Box::new(cond_table(st, cx)))),
                None => cx.p.at(e.node.start(), "`not` must be a condition table"),
            },
            attr => {
                let Some(slot) = cx.config.schema.slot(attr) else {
                    let names: Vec<&str> = cx.config.schema.names().collect();
                    cx.p.at(
                        e.key_span.start,
                        format!("unknown attribute `{attr}`; known attributes: {}", names.join(", ")),
                    );
                    continue;
                };
                if let Some(c) = attr_cond(slot, attr, &e.node, cx) {
                    all.push(c);
                }
            }
        }
    }
    if all.len() == 1 { all.pop().unwrap_or(Cond::All(Vec::new())) } else { Cond::All(all) }
}

fn str_list(node: &Node, what: &str, cx: &mut Ctx<'_, '_, '_>) -> Option<Vec<String>> {
    let items = node.as_array()?;
    let mut out = Vec::new();
    for i in items {
        match i.as_str() {
            Some(s) => out.push(s.to_string()),
            None => cx.p.at(i.start(), format!("values of `{what}` must be strings")),
        }
    }
    if out.is_empty() {
        cx.p.at(node.start(), format!("`{what}` lists no values: it could never match"));
    }
    Some(out)
}

fn attr_cond(slot: usize, attr: &str, node: &Node, cx: &mut Ctx<'_, '_, '_>) -> Option<Cond> {
    let ty = cx.config.schema.ty(slot);
    let check_value = |v: &str, cx: &mut Ctx<'_, '_, '_>, at: usize| {
        if attr == "status" && v.parse::<tenure_core::Status>().is_err() {
            cx.p.at(at, format!("`status` is never `{v}`; it is one of prehire, active, suspended, terminated"));
        }
        if attr == "kind" && v.parse::<tenure_core::Kind>().is_err() {
            cx.p.at(at, format!("`kind` is never `{v}`; it is one of employee, contractor, service, bot"));
        }
    };
    match &node.value {
        Value::Str(s) => {
            check_value(s, cx, node.start());
            Some(Cond::Attr(slot, Test::Eq(s.clone())))
        }
        Value::Array(_) => {
            let list = str_list(node, attr, cx)?;
            for v in &list {
                check_value(v, cx, node.start());
            }
            Some(Cond::Attr(slot, Test::In(list)))
        }
        Value::Table(t) => {
            let mut tests = Vec::new();
            for e in &t.entries {
                let at = e.node.start();
                let s = e.node.as_str();
                let need_str = |cx: &mut Ctx<'_, '_, '_>| {
                    if s.is_none() {
                        cx.p.at(at, format!("`{}` on `{attr}` needs a string", e.key));
                    }
                };
                let test = match e.key.as_str() {
                    "eq" => {
                        need_str(cx);
                        s.map(|v| Cond::Attr(slot, Test::Eq(v.to_string())))
                    }
                    "in" => str_list(&e.node, attr, cx).map(|l| Cond::Attr(slot, Test::In(l))),
                    "not" => match (&e.node.value, s) {
                        (_, Some(v)) => Some(Cond::Not(Box::new(Cond::Attr(slot, Test::Eq(v.to_string()))))),
                        (Value::Array(_), None) => {
                            str_list(&e.node, attr, cx).map(|l| Cond::Not(Box::new(Cond::Attr(slot, Test::In(l)))))
                        }
                        _ => {
                            cx.p.at(at, format!("`not` on `{attr}` needs a string or an array of strings"));
                            None
                        }
                    },
                    "prefix" | "suffix" => {
                        need_str(cx);
                        s.map(|v| {
                            let t = if e.key == "prefix" {
                                Test::Prefix(v.to_string())
                            } else {
                                Test::Suffix(v.to_string())
                            };
                            Cond::Attr(slot, t)
                        })
                    }
                    "regex" => {
                        need_str(cx);
                        s.and_then(|v| match regex::Regex::new(v) {
                            Ok(re) => Some(Cond::Attr(slot, Test::Regex(re))),
                            Err(err) => {
                                cx.p.at(
                                    at,
                                    format!(
                                        "regex `{v}` on `{attr}` is invalid: {}",
                                        err.to_string().lines().last().unwrap_or("")
                                    ),
                                );
                                None
                            }
                        })
                    }
                    "present" => match e.node.value {
                        Value::Bool(b) => Some(Cond::Attr(slot, Test::Present(b))),
                        _ => {
                            cx.p.at(at, format!("`present` on `{attr}` must be true or false"));
                            None
                        }
                    },
                    "before" | "after" | "on_or_before" | "on_or_after" => {
                        if ty != AttrType::Date {
                            cx.p.at(at, format!("`{}` compares dates, but `{attr}` is not a date attribute", e.key));
                            None
                        } else {
                            need_str(cx);
                            s.and_then(|v| match parse_relative(v, cx.today) {
                                Ok(d) => {
                                    let op = match e.key.as_str() {
                                        "before" => DateOp::Before,
                                        "after" => DateOp::After,
                                        "on_or_before" => DateOp::OnOrBefore,
                                        _ => DateOp::OnOrAfter,
                                    };
                                    Some(Cond::Attr(slot, Test::Date(op, d)))
                                }
                                Err(msg) => {
                                    cx.p.at(at, msg);
                                    None
                                }
                            })
                        }
                    }
                    other => {
                        cx.p.at(
                            e.key_span.start,
                            format!("unknown test `{other}` on `{attr}`; expected eq, in, not, prefix, suffix, regex, present, before, after, on_or_before, on_or_after"),
                        );
                        None
                    }
                };
                if let Some(t) = test {
                    tests.push(t);
                }
            }
            if t.entries.is_empty() {
                cx.p.at(node.start(), format!("the condition on `{attr}` is empty"));
            }
            Some(if tests.len() == 1 { tests.pop().unwrap_or(Cond::All(Vec::new())) } else { Cond::All(tests) })
        }
        _ => {
            cx.p.at(
                node.start(),
                format!(
                    "the condition on `{attr}` must be a string, an array or a table of tests, not {}",
                    node.type_name()
                ),
            );
            None
        }
    }
}
