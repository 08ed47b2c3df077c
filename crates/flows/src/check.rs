//! `check`: what `switchboard flows check FILE…` reports before a flow goes live.
//!
//! Each [`Problem`] names the line (of the node, when the problem is inside one), the node,
//! what is wrong and what to do. Checks: duplicate and unknown node ids, unreachable nodes,
//! nodes that fall off the end of the file, bad expressions and templates, variables read but
//! never set (nor declared as `inputs`), undeclared `env.*` values, cycles that never wait for
//! the customer, per-node sanity (empty menus, inverted ranges, handoff priorities), and
//! keyword triggers (empty keywords or channels, keywords that are command words).
//! [`check_library`] adds what needs several flows: subflows that do not exist or call
//! themselves in a loop, and a keyword two flows claim on a common channel.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;

use serde::Serialize;

use crate::definition::{CommandWords, FlowDefinition, FlowLibrary, Node, Validator, parse_flow};
use crate::expr::{self, Root};
use crate::template;
use crate::trigger::normalize;

/// One thing wrong with a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 1-based line in the flow file, when known.
    pub line: Option<usize>,
    /// The node it is about.
    pub node: Option<String>,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

impl fmt::Display for Problem {
    /// `12: node `ask_amount`: unknown target `confirm` (add a node with id `confirm` or fix the name)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "{line}: ")?;
        }
        if let Some(node) = &self.node {
            write!(f, "node `{node}`: ")?;
        }
        write!(f, "{} ({})", self.message, self.hint)
    }
}

/// Calls `f` with every expression source in a node.
pub fn for_each_expression(node: &Node, f: &mut dyn FnMut(&str)) {
    match node {
        Node::Set(n) => n.set.iter().chain(n.contact.iter()).for_each(|(_, e)| f(e)),
        Node::Branch(n) => n.cases.iter().for_each(|c| f(&c.when)),
        Node::Record(n) => n.data.iter().for_each(|(_, e)| f(e)),
        Node::Menu(n) => n
            .options
            .iter()
            .flat_map(|o| o.set.iter())
            .for_each(|(_, e)| f(e)),
        _ => {}
    }
}

fn json_strings<'a>(v: &'a serde_json::Value, f: &mut dyn FnMut(&'a str)) {
    match v {
        serde_json::Value::String(s) => f(s),
        serde_json::Value::Array(a) => a.iter().for_each(|x| json_strings(x, f)),
        serde_json::Value::Object(o) => o.values().for_each(|x| json_strings(x, f)),
        _ => {}
    }
}

/// Calls `f` with every template in a node.
pub fn for_each_template<'a>(node: &'a Node, f: &mut dyn FnMut(&'a str)) {
    match node {
        Node::Send(n) => {
            n.text.iter().for_each(|t| f(t));
            if let Some(t) = &n.template {
                t.variables.iter().for_each(|v| f(v));
            }
            if let Some(m) = &n.media {
                f(&m.url);
                m.caption.iter().for_each(|t| f(t));
            }
        }
        Node::Menu(n) => {
            f(&n.prompt);
            n.invalid.iter().for_each(|t| f(t));
            n.options.iter().for_each(|o| {
                f(&o.title);
                o.description.iter().for_each(|t| f(t));
            });
        }
        Node::Ask(n) => {
            f(&n.prompt);
            n.invalid.iter().for_each(|t| f(t));
        }
        Node::Http(n) => {
            f(&n.url);
            n.headers.iter().for_each(|(_, t)| f(t));
            if let Some(b) = &n.body {
                json_strings(b, f);
            }
        }
        Node::Handoff(n) => {
            n.summary.iter().for_each(|t| f(t));
            n.message.iter().for_each(|t| f(t));
        }
        Node::Wait(n) => n.text.iter().for_each(|t| f(t)),
        Node::End(n) => n.text.iter().for_each(|t| f(t)),
        _ => {}
    }
}

/// Variables a node assigns.
pub fn assigned_vars(node: &Node) -> Vec<String> {
    match node {
        Node::Set(n) => n.set.iter().map(|(k, _)| k.clone()).collect(),
        Node::Ask(n) => {
            let mut v = vec![n.save.clone()];
            if matches!(n.validate, Validator::SaId { .. }) {
                v.push(format!("{}_birth_date", n.save));
            }
            v
        }
        Node::Menu(n) => n
            .save
            .iter()
            .cloned()
            .chain(
                n.options
                    .iter()
                    .flat_map(|o| o.set.iter().map(|(k, _)| k.clone())),
            )
            .collect(),
        Node::Http(n) => n.save.iter().map(|(k, _)| k.clone()).collect(),
        Node::Wait(n) => n.save.iter().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Every target a node can go to, with the field that names it. `None` targets are the
/// implicit "node below" (resolved by the caller).
fn targets(node: &Node) -> Vec<(&'static str, Option<&str>)> {
    let mut t: Vec<(&'static str, Option<&str>)> = Vec::new();
    match node {
        Node::Send(n) => t.push(("next", n.next.as_deref())),
        Node::Set(n) => t.push(("next", n.next.as_deref())),
        Node::Record(n) => t.push(("next", n.next.as_deref())),
        Node::Subflow(n) => t.push(("next", n.next.as_deref())),
        Node::Http(n) => {
            t.push(("next", n.next.as_deref()));
            if let Some(e) = &n.on_error {
                t.push(("on_error", Some(e)));
            }
        }
        Node::Ask(n) => {
            t.push(("next", n.next.as_deref()));
            if let Some(e) = &n.on_fail {
                t.push(("on_fail", Some(e)));
            }
        }
        Node::Wait(n) => {
            t.push(("next", n.next.as_deref()));
            t.push(("on_timeout", Some(&n.on_timeout)));
        }
        Node::Menu(n) => {
            for o in &n.options {
                match (&o.next, &n.next) {
                    (Some(x), _) => t.push(("options.next", Some(x))),
                    (None, Some(x)) => t.push(("next", Some(x))),
                    (None, None) => t.push(("next", None)),
                }
            }
            if let Some(e) = &n.on_fail {
                t.push(("on_fail", Some(e)));
            }
        }
        Node::Branch(n) => {
            n.cases
                .iter()
                .for_each(|c| t.push(("cases.next", Some(&c.next))));
            t.push(("else", Some(&n.otherwise)));
        }
        Node::Handoff(_) | Node::Return(_) | Node::End(_) => {}
    }
    t
}

/// Resolved successor ids of a node (implicit "node below" included when it exists).
fn successors(def: &FlowDefinition, idx: usize) -> Vec<String> {
    let node = &def.nodes[idx];
    targets(node)
        .into_iter()
        .filter_map(|(_, t)| match t {
            Some(t) => Some(t.to_string()),
            None => def.nodes.get(idx + 1).map(|n| n.id().to_string()),
        })
        .collect()
}

/// Checks a parsed flow; an empty result means it is ready to use.
pub fn check(def: &FlowDefinition) -> Vec<Problem> {
    let mut out = Vec::new();
    let at = |node: &str| def.line_of(node);
    let problem =
        |node: Option<&str>, line: Option<usize>, message: String, hint: String| Problem {
            line,
            node: node.map(str::to_string),
            message,
            hint,
        };

    if def.nodes.is_empty() {
        out.push(problem(
            None,
            def.header_lines.get("id").copied(),
            "the flow has no nodes".into(),
            "add at least one node under `nodes:`".into(),
        ));
        return out;
    }

    // Duplicate ids.
    let mut seen = HashSet::new();
    for (i, n) in def.nodes.iter().enumerate() {
        if !seen.insert(n.id()) {
            out.push(problem(
                Some(n.id()),
                def.lines.get(i).copied().flatten(),
                format!("node id `{}` is used twice", n.id()),
                "give every node a unique id".into(),
            ));
        }
    }

    if def.node(&def.start).is_none() {
        out.push(problem(
            None,
            def.header_lines.get("start").copied(),
            format!("start node `{}` does not exist", def.start),
            "set `start:` to the id of a node".into(),
        ));
    }

    // Unknown targets and falling off the end.
    for (i, n) in def.nodes.iter().enumerate() {
        for (field, t) in targets(n) {
            match t {
                Some(t) if def.node(t).is_none() => out.push(problem(
                    Some(n.id()),
                    at(n.id()),
                    format!("`{field}` names unknown node `{t}`"),
                    suggest(def, t),
                )),
                None if i + 1 == def.nodes.len() => out.push(problem(
                    Some(n.id()),
                    at(n.id()),
                    "this is the last node and has no `next`, so the flow would run off its end"
                        .into(),
                    "add `next:`, or put an `end` or `return` node after it".into(),
                )),
                _ => {}
            }
        }
    }

    // Reachability from start.
    if let Some(start) = def.position(&def.start) {
        let mut reached = vec![false; def.nodes.len()];
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut reached[i], true) {
                continue;
            }
            for s in successors(def, i) {
                if let Some(j) = def.position(&s) {
                    stack.push(j);
                }
            }
        }
        for (i, n) in def.nodes.iter().enumerate() {
            if !reached[i] {
                out.push(problem(
                    Some(n.id()),
                    at(n.id()),
                    "this node cannot be reached from the start".into(),
                    format!("point a `next` at `{}`, or delete the node", n.id()),
                ));
            }
        }
    }

    // Cycles that never stop for the customer.
    out.extend(cycles_without_input(def));

    out.extend(trigger_problems(def));

    // Expressions, templates and variables.
    let mut assigned: BTreeSet<String> = def.inputs.iter().cloned().collect();
    for n in &def.nodes {
        assigned.extend(assigned_vars(n));
    }
    for n in &def.nodes {
        let id = n.id();
        let mut reads: Vec<(Root, String)> = Vec::new();
        for_each_expression(n, &mut |src| {
            match expr::parse(src) {
            Ok(e) => e.visit_paths(&mut |root, name| reads.push((root, name.to_string()))),
            Err(e) => out.push(problem(
                Some(id),
                at(id),
                format!("bad expression `{src}`: {e}"),
                "expressions use vars.x, contact.x, env.x, numbers, 'text', comparisons, and/or/not, + - * / % and the built-in functions".into(),
            )),
        }
        });
        for_each_template(n, &mut |t| match template::parse(t) {
            Ok(segs) => segs.into_iter().for_each(|s| {
                if let template::Segment::Path(root, name) = s {
                    reads.push((root, name.to_string()));
                }
            }),
            Err((column, msg)) => out.push(problem(
                Some(id),
                at(id),
                format!("bad template at column {column} of `{t}`: {msg}"),
                "placeholders look like {{vars.name}}".into(),
            )),
        });
        for (root, name) in reads {
            match root {
                Root::Vars if !assigned.contains(&name) => out.push(problem(
                    Some(id),
                    at(id),
                    format!("variable `vars.{name}` is read but never set"),
                    "set it with an `ask`, `set`, `menu` or `http` node, or list it under `inputs:` if the caller provides it".to_string(),
                )),
                Root::Env if !def.env.contains_key(&name) => out.push(problem(
                    Some(id),
                    at(id),
                    format!("`env.{name}` is not declared"),
                    format!("add `{name}:` with a default under `env:` at the top of the flow"),
                )),
                _ => {}
            }
        }
        out.extend(node_sanity(def, n));
    }
    out.sort_by_key(|p| p.line.unwrap_or(0));
    out
}

/// Keyword triggers: no empty keywords or channel names, and no keyword that is also one of
/// the global command words (outside a flow it would start this flow instead of the command).
fn trigger_problems(def: &FlowDefinition) -> Vec<Problem> {
    let line = def.triggers_line();
    let p = |message: String, hint: &str| Problem {
        line,
        node: None,
        message,
        hint: hint.to_string(),
    };
    let mut out = Vec::new();
    let mut commands: HashSet<String> = CommandWords::ENGLISH_AGENT
        .iter()
        .chain(CommandWords::ENGLISH_MENU)
        .chain(CommandWords::ENGLISH_STOP)
        .map(|w| normalize(w))
        .collect();
    for words in def.settings.commands.values() {
        commands.extend(
            words
                .agent
                .iter()
                .chain(&words.menu)
                .chain(&words.stop)
                .map(|w| normalize(w)),
        );
    }
    for (language, words) in &def.triggers.keywords {
        for word in words {
            let key = normalize(word);
            if key.is_empty() {
                out.push(p(
                    format!("an empty keyword under `triggers.keywords.{language}`"),
                    "remove it or write the word customers send",
                ));
            } else if commands.contains(&key) {
                out.push(p(
                    format!("keyword `{word}` is also a command word (agent, menu or stop)"),
                    "choose another keyword; customers rely on the command words",
                ));
            }
        }
    }
    if def.triggers.channels.iter().any(|c| c.trim().is_empty()) {
        out.push(p(
            "an empty entry under `triggers.channels`".into(),
            "list channel kinds (webchat, whatsapp, telegram, signal) or channel ids, or leave `channels` out for every channel",
        ));
    }
    out
}

fn suggest(def: &FlowDefinition, wrong: &str) -> String {
    let limit = match wrong.chars().count() {
        0..=2 => 0,
        3..=4 => 1,
        _ => 2,
    };
    let close = def.nodes.iter().map(|n| n.id()).find(|id| {
        let long_enough = id.len() >= 3 && wrong.len() >= 3;
        (long_enough && (id.contains(wrong) || wrong.contains(id)))
            || (limit > 0 && edit_distance(id, wrong) <= limit)
    });
    match close {
        Some(c) => format!("did you mean `{c}`?"),
        None => format!("add a node with id `{wrong}` or fix the name"),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

fn node_sanity(def: &FlowDefinition, n: &Node) -> Vec<Problem> {
    let id = n.id();
    let p = |message: String, hint: &str| Problem {
        line: def.line_of(id),
        node: Some(id.to_string()),
        message,
        hint: hint.to_string(),
    };
    let mut out = Vec::new();
    match n {
        Node::Menu(m) => {
            if m.options.is_empty() {
                out.push(p(
                    "the menu has no options".into(),
                    "add at least one entry under `options:`",
                ));
            }
            let mut ids = HashSet::new();
            for o in &m.options {
                if !ids.insert(o.id.as_str()) {
                    out.push(p(
                        format!("option id `{}` is used twice", o.id),
                        "give every option a unique id",
                    ));
                }
            }
        }
        Node::Ask(a) => match &a.validate {
            Validator::Number {
                min: Some(lo),
                max: Some(hi),
                ..
            }
            | Validator::Money {
                min: Some(lo),
                max: Some(hi),
            } if lo > hi => {
                out.push(p(
                    format!("`min` ({lo}) is larger than `max` ({hi})"),
                    "swap them",
                ));
            }
            Validator::Date {
                min_days: Some(lo),
                max_days: Some(hi),
            } if lo > hi => {
                out.push(p(
                    format!("`min_days` ({lo}) is larger than `max_days` ({hi})"),
                    "swap them",
                ));
            }
            Validator::TextLength {
                min: Some(lo),
                max: Some(hi),
            } if lo > hi => {
                out.push(p(
                    format!("`min` ({lo}) is larger than `max` ({hi})"),
                    "swap them",
                ));
            }
            Validator::Choice { options } if options.is_empty() => {
                out.push(p(
                    "the choice validator has no options".into(),
                    "add entries under `validate.options`",
                ));
            }
            _ => {}
        },
        Node::Branch(b) if b.cases.is_empty() => {
            out.push(p(
                "the branch has no cases".into(),
                "add `cases:` or replace the branch with a `next`",
            ));
        }
        Node::Http(h) => {
            if h.timeout_ms == 0 || h.timeout_ms > 30_000 {
                out.push(p(
                    format!("timeout_ms {} is outside 1..=30000", h.timeout_ms),
                    "customers are waiting; keep HTTP calls short",
                ));
            }
            if h.on_error.is_none() {
                out.push(p(
                    "no `on_error` target: a failed call would end the conversation".into(),
                    "add `on_error:` pointing at an apology, a retry or a hand-off",
                ));
            }
        }
        Node::Wait(w) if w.timeout_seconds == 0 => {
            out.push(p("timeout_seconds is 0".into(), "wait at least one second"));
        }
        Node::Subflow(s) if s.flow == def.id => {
            out.push(p(
                "the flow calls itself".into(),
                "use a `next` back to an earlier node instead",
            ));
        }
        Node::Record(r) if r.kind.trim().is_empty() => {
            out.push(p(
                "record `kind` is empty".into(),
                "name the record type, e.g. `order`",
            ));
        }
        _ => {}
    }
    out
}

/// Finds cycles made only of nodes that do not wait for the customer (Tarjan's SCC).
fn cycles_without_input(def: &FlowDefinition) -> Vec<Problem> {
    let n = def.nodes.len();
    let edges: Vec<Vec<usize>> = (0..n)
        .map(|i| {
            if def.nodes[i].waits_for_customer() {
                Vec::new()
            } else {
                successors(def, i)
                    .iter()
                    .filter_map(|s| def.position(s))
                    .filter(|&j| !def.nodes[j].waits_for_customer())
                    .collect()
            }
        })
        .collect();
    // Iterative Tarjan.
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next_index = 0;
    let mut out = Vec::new();
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(&mut (v, ref mut ei)) = work.last_mut() {
            if *ei == 0 && index[v] == usize::MAX {
                index[v] = next_index;
                low[v] = next_index;
                next_index += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = edges[v].get(*ei) {
                *ei += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                let self_loop = component.len() == 1 && edges[v].contains(&v);
                if component.len() > 1 || self_loop {
                    component.sort_unstable();
                    let names: Vec<&str> = component.iter().map(|&i| def.nodes[i].id()).collect();
                    let first = names[0];
                    out.push(Problem {
                        line: def.line_of(first),
                        node: Some(first.to_string()),
                        message: format!("these nodes loop without ever waiting for the customer: {}", names.join(" → ")),
                        hint: "put a `menu`, `ask` or `wait` node in the loop, or break it with a branch to an `end`".into(),
                    });
                }
            }
        }
    }
    out
}

/// Parses and checks flow source in one go.
pub fn check_source(yaml: &str) -> Vec<Problem> {
    match parse_flow(yaml) {
        Ok(def) => check(&def),
        Err(problems) => problems,
    }
}

/// Keywords that two flows claim on a common channel: the customer could not tell which flow
/// starts. Reported on both flows (so loading either one shows it). Two flows limited to
/// disjoint `channels` lists may share a keyword.
fn duplicate_keywords(lib: &FlowLibrary) -> Vec<(String, Problem)> {
    let overlap = |a: &[String], b: &[String]| {
        a.is_empty()
            || b.is_empty()
            || a.iter()
                .any(|x| b.iter().any(|y| x.trim().eq_ignore_ascii_case(y.trim())))
    };
    let mut out = Vec::new();
    let flows: Vec<&FlowDefinition> = lib.flows.values().collect();
    for (i, a) in flows.iter().enumerate() {
        let mine: BTreeSet<String> = a.triggers.normalized_keywords().collect();
        for (j, b) in flows.iter().enumerate() {
            if i == j || !overlap(&a.triggers.channels, &b.triggers.channels) {
                continue;
            }
            let theirs: BTreeSet<String> = b.triggers.normalized_keywords().collect();
            for word in mine.intersection(&theirs) {
                out.push((
                    a.id.clone(),
                    Problem {
                        line: a.triggers_line(),
                        node: None,
                        message: format!(
                            "keyword `{word}` also starts flow `{}` on the same channels",
                            b.id
                        ),
                        hint: "keep the keyword in one flow, or limit each flow to different `triggers.channels`".into(),
                    },
                ));
            }
        }
    }
    out
}

/// Checks what needs several flows: each `subflow` names a flow of the library, flows do not
/// call each other in a loop, and no keyword starts two flows on one channel. Returns
/// `(flow id, problem)` pairs.
pub fn check_library(lib: &FlowLibrary) -> Vec<(String, Problem)> {
    let mut out = Vec::new();
    let mut calls: HashMap<&str, Vec<&str>> = HashMap::new();
    for (fid, def) in &lib.flows {
        for n in &def.nodes {
            if let Node::Subflow(s) = n {
                calls.entry(fid.as_str()).or_default().push(s.flow.as_str());
                if !lib.flows.contains_key(&s.flow) {
                    out.push((
                        fid.clone(),
                        Problem {
                            line: def.line_of(&s.id),
                            node: Some(s.id.clone()),
                            message: format!("subflow `{}` is not one of the loaded flows", s.flow),
                            hint: format!("add a flow file with `id: {}` or fix the name", s.flow),
                        },
                    ));
                }
            }
        }
    }
    out.extend(duplicate_keywords(lib));
    // A flow reachable from itself through subflow calls would grow the call stack forever.
    for fid in lib.flows.keys() {
        let mut seen = HashSet::new();
        let mut stack: Vec<&str> = calls.get(fid.as_str()).cloned().unwrap_or_default();
        while let Some(f) = stack.pop() {
            if f == fid {
                out.push((
                    fid.clone(),
                    Problem {
                        line: lib.flows[fid].header_lines.get("id").copied(),
                        node: None,
                        message: format!("flow `{fid}` calls itself through subflows"),
                        hint:
                            "return to the caller with a `return` node instead of calling it again"
                                .into(),
                    },
                ));
                break;
            }
            if seen.insert(f) {
                stack.extend(calls.get(f).cloned().unwrap_or_default());
            }
        }
    }
    out
}
