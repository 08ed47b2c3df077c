//! The small, safe expression language used by `set`, `branch` and `record` nodes.
//!
//! ```text
//! expr    := or
//! or      := and ("or" and)*
//! and     := not ("and" not)*
//! not     := "not" not | cmp
//! cmp     := add (("==" | "!=" | "<" | "<=" | ">" | ">=") add)?
//! add     := mul (("+" | "-") mul)*
//! mul     := unary (("*" | "/" | "%") unary)*
//! unary   := "-" unary | primary
//! primary := number | 'text' | "text" | true | false | null
//!          | (vars | contact | env) "." name
//!          | function "(" [expr ("," expr)*] ")" | "(" expr ")"
//! ```
//!
//! Why hand-written and not a scripting crate: the grammar is a dozen lines, and the point
//! is what it cannot do. There are no loops, no user functions, no assignment, no IO and no
//! access to anything but the session's variables, the contact and the flow's `env`. The
//! parser rejects source longer than [`MAX_SOURCE_LEN`] and nesting deeper than
//! [`MAX_DEPTH`], so evaluation (which recurses over the tree) is bounded too. Every failure
//! is an [`ExprError`] value; nothing panics. Text and list results are size-capped so a flow
//! that appends in a loop across many messages cannot grow a session without bound.
//!
//! Numbers are `f64`; money is [`Money`] (integer cents), created by `money(..)`, by the
//! `money` validator or by an HTTP mapping. Money ± money and money × or ÷ a number stay money
//! (rounded half away from zero to the cent), so displayed amounts never show float noise.

use std::collections::BTreeMap;
use std::fmt;

use thiserror::Error;
use time::OffsetDateTime;

use crate::value::{Money, Value, Vars};

/// Longest expression source accepted.
pub const MAX_SOURCE_LEN: usize = 2_000;
/// Deepest nesting accepted (parentheses, operators, calls).
pub const MAX_DEPTH: usize = 32;
/// Longest text an expression may produce.
pub const MAX_TEXT_LEN: usize = 16_000;
/// Longest list an expression may produce.
pub const MAX_LIST_LEN: usize = 500;

/// Why an expression could not be parsed or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExprError {
    /// The source is not a valid expression.
    #[error("syntax error at column {column}: {message}")]
    Syntax {
        /// 1-based column (in characters).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// Evaluation failed (type mismatch, division by zero, size limit, ...).
    #[error("{0}")]
    Eval(String),
}

fn eval_err<T>(message: impl Into<String>) -> Result<T, ExprError> {
    Err(ExprError::Eval(message.into()))
}

/// Where a path reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// Session variables (`vars.x`).
    Vars,
    /// The contact (`contact.name`, `contact.phone`, `contact.language`, attributes).
    Contact,
    /// Deployment settings (`env.base_url`).
    Env,
}

impl Root {
    /// Parses the first segment of a path.
    pub fn parse(name: &str) -> Option<Root> {
        match name {
            "vars" => Some(Root::Vars),
            "contact" => Some(Root::Contact),
            "env" => Some(Root::Env),
            _ => None,
        }
    }
}

/// Built-in functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `len(text | list)`.
    Len,
    /// `upper(text)`.
    Upper,
    /// `lower(text)`.
    Lower,
    /// `trim(text)`.
    Trim,
    /// `contains(text, part)` or `contains(list, item)`.
    Contains,
    /// `starts_with(text, prefix)`.
    StartsWith,
    /// `round(number [, places])`.
    Round,
    /// `money(number | text)`.
    Money,
    /// `number(text | money)`.
    Number,
    /// `text(any)`.
    Text,
    /// `min(a, b)`.
    Min,
    /// `max(a, b)`.
    Max,
    /// `push(list | null, item)`: a new list with `item` appended.
    Push,
    /// `join(list, separator)`.
    Join,
    /// `today()`: the step's date as `YYYY-MM-DD`.
    Today,
    /// `days_until('YYYY-MM-DD')`: whole days from today.
    DaysUntil,
    /// `reference('LN')`: a reference number unique to this session and step (`LN-7K3Q9D2A`).
    Reference,
    /// `if(condition, then, else)`: only the chosen branch is evaluated.
    If,
}

impl Func {
    fn parse(name: &str) -> Option<(Func, usize, usize)> {
        Some(match name {
            "len" => (Func::Len, 1, 1),
            "upper" => (Func::Upper, 1, 1),
            "lower" => (Func::Lower, 1, 1),
            "trim" => (Func::Trim, 1, 1),
            "contains" => (Func::Contains, 2, 2),
            "starts_with" => (Func::StartsWith, 2, 2),
            "round" => (Func::Round, 1, 2),
            "money" => (Func::Money, 1, 1),
            "number" => (Func::Number, 1, 1),
            "text" => (Func::Text, 1, 1),
            "min" => (Func::Min, 2, 2),
            "max" => (Func::Max, 2, 2),
            "push" => (Func::Push, 2, 2),
            "join" => (Func::Join, 2, 2),
            "today" => (Func::Today, 0, 0),
            "days_until" => (Func::DaysUntil, 1, 1),
            "reference" => (Func::Reference, 1, 1),
            "if" => (Func::If, 3, 3),
            _ => return None,
        })
    }
}

/// The names of all built-in functions (for error hints and the JSON Schema).
pub const FUNCTIONS: &[&str] = &[
    "len",
    "upper",
    "lower",
    "trim",
    "contains",
    "starts_with",
    "round",
    "money",
    "number",
    "text",
    "min",
    "max",
    "push",
    "join",
    "today",
    "days_until",
    "reference",
    "if",
];

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `or`
    Or,
    /// `and`
    And,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `+` (also text concatenation)
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Rem,
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal.
    Lit(Value),
    /// `vars.x`, `contact.x`, `env.x`.
    Path(Root, String),
    /// `not e`.
    Not(Box<Expr>),
    /// `-e`.
    Neg(Box<Expr>),
    /// `a op b`.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `f(args)`.
    Call(Func, Vec<Expr>),
}

impl Expr {
    /// Calls `f` with every path the expression reads (for `check`'s missing-variable report).
    pub fn visit_paths(&self, f: &mut dyn FnMut(Root, &str)) {
        match self {
            Expr::Lit(_) => {}
            Expr::Path(root, name) => f(*root, name),
            Expr::Not(e) | Expr::Neg(e) => e.visit_paths(f),
            Expr::Binary(_, a, b) => {
                a.visit_paths(f);
                b.visit_paths(f);
            }
            Expr::Call(_, args) => args.iter().for_each(|a| a.visit_paths(f)),
        }
    }
}

// ---------------------------------------------------------------- lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Dot,
    Comma,
    LParen,
    RParen,
    Op(&'static str),
    End,
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ExprError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let syntax = |column: usize, message: &str| ExprError::Syntax {
        column: column + 1,
        message: message.to_string(),
    };
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() {
            while i < chars.len()
                && (chars[i].is_ascii_digit() || chars[i] == '.' || chars[i] == '_')
            {
                i += 1;
            }
            let text: String = chars[start..i].iter().filter(|c| **c != '_').collect();
            let n: f64 = text
                .parse()
                .map_err(|_| syntax(start, &format!("`{text}` is not a number")))?;
            out.push((Tok::Num(n), start));
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(chars[start..i].iter().collect()), start));
            continue;
        }
        if c == '\'' || c == '"' {
            i += 1;
            let mut s = String::new();
            loop {
                match chars.get(i) {
                    None => return Err(syntax(start, "text is not closed; add the closing quote")),
                    Some('\\') => {
                        match chars.get(i + 1) {
                            Some('n') => s.push('\n'),
                            Some(&other) => s.push(other),
                            None => return Err(syntax(i, "dangling backslash")),
                        }
                        i += 2;
                    }
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some(&other) => {
                        s.push(other);
                        i += 1;
                    }
                }
            }
            out.push((Tok::Str(s), start));
            continue;
        }
        let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
        let op2 = match two.as_str() {
            "==" => Some("=="),
            "!=" => Some("!="),
            "<=" => Some("<="),
            ">=" => Some(">="),
            "&&" => Some("and"),
            "||" => Some("or"),
            _ => None,
        };
        if let Some(op) = op2 {
            out.push((Tok::Op(op), start));
            i += 2;
            continue;
        }
        let tok = match c {
            '.' => Tok::Dot,
            ',' => Tok::Comma,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '<' => Tok::Op("<"),
            '>' => Tok::Op(">"),
            '+' => Tok::Op("+"),
            '-' => Tok::Op("-"),
            '*' => Tok::Op("*"),
            '/' => Tok::Op("/"),
            '%' => Tok::Op("%"),
            '!' => Tok::Op("not"),
            '=' => return Err(syntax(start, "use `==` to compare")),
            other => return Err(syntax(start, &format!("unexpected character `{other}`"))),
        };
        out.push((tok, start));
        i += 1;
    }
    out.push((Tok::End, chars.len()));
    Ok(out)
}

// ---------------------------------------------------------------- parser

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        self.toks.get(self.pos).map_or(&Tok::End, |t| &t.0)
    }

    fn column(&self) -> usize {
        self.toks.get(self.pos).map_or(0, |t| t.1) + 1
    }

    fn bump(&mut self) -> Tok {
        let t = self.peek().clone();
        self.pos += 1;
        t
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, ExprError> {
        Err(ExprError::Syntax {
            column: self.column(),
            message: message.into(),
        })
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Tok::Op(o) if *o == op)
            || matches!(self.peek(), Tok::Ident(w) if w == op && (op == "and" || op == "or" || op == "not"))
    }

    fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err(format!("expression nests deeper than {MAX_DEPTH} levels; split it over several `set` entries"));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, ExprError> {
        self.enter()?;
        let mut left = self.and()?;
        while self.is_op("or") {
            self.bump();
            let right = self.and()?;
            left = Expr::Binary(BinOp::Or, Box::new(left), Box::new(right));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.not()?;
        while self.is_op("and") {
            self.bump();
            let right = self.not()?;
            left = Expr::Binary(BinOp::And, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, ExprError> {
        if self.is_op("not") {
            self.bump();
            self.enter()?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Result<Expr, ExprError> {
        let left = self.add()?;
        let op = match self.peek() {
            Tok::Op("==") => BinOp::Eq,
            Tok::Op("!=") => BinOp::Ne,
            Tok::Op("<") => BinOp::Lt,
            Tok::Op("<=") => BinOp::Le,
            Tok::Op(">") => BinOp::Gt,
            Tok::Op(">=") => BinOp::Ge,
            _ => return Ok(left),
        };
        self.bump();
        let right = self.add()?;
        if matches!(self.peek(), Tok::Op("==" | "!=" | "<" | "<=" | ">" | ">=")) {
            return self.err("comparisons do not chain; combine them with `and`");
        }
        Ok(Expr::Binary(op, Box::new(left), Box::new(right)))
    }

    fn add(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.mul()?;
        loop {
            let op = match self.peek() {
                Tok::Op("+") => BinOp::Add,
                Tok::Op("-") => BinOp::Sub,
                _ => return Ok(left),
            };
            self.bump();
            let right = self.mul()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn mul(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Op("*") => BinOp::Mul,
                Tok::Op("/") => BinOp::Div,
                Tok::Op("%") => BinOp::Rem,
                _ => return Ok(left),
            };
            self.bump();
            let right = self.unary()?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        if matches!(self.peek(), Tok::Op("-")) {
            self.bump();
            self.enter()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(match inner {
                Expr::Lit(Value::Number(n)) => Expr::Lit(Value::Number(-n)),
                other => Expr::Neg(Box::new(other)),
            });
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        match self.bump() {
            Tok::Num(n) => Ok(Expr::Lit(Value::Number(n))),
            Tok::Str(s) => Ok(Expr::Lit(Value::Text(s))),
            Tok::LParen => {
                let e = self.expr()?;
                if self.bump() != Tok::RParen {
                    self.pos -= 1;
                    return self.err("expected `)`");
                }
                Ok(e)
            }
            Tok::Ident(word) => match word.as_str() {
                "true" => Ok(Expr::Lit(Value::Bool(true))),
                "false" => Ok(Expr::Lit(Value::Bool(false))),
                "null" => Ok(Expr::Lit(Value::Null)),
                _ => {
                    if let Some(root) = Root::parse(&word) {
                        if self.bump() != Tok::Dot {
                            self.pos -= 1;
                            return self
                                .err(format!("expected `.` after `{word}` (as in `{word}.name`)"));
                        }
                        return match self.bump() {
                            Tok::Ident(name) => {
                                if self.peek() == &Tok::Dot {
                                    return self.err("paths have two parts only (`vars.amount`)");
                                }
                                Ok(Expr::Path(root, name))
                            }
                            _ => {
                                self.pos -= 1;
                                self.err(format!("expected a name after `{word}.`"))
                            }
                        };
                    }
                    if self.peek() == &Tok::LParen {
                        let Some((func, min, max)) = Func::parse(&word) else {
                            self.pos -= 1;
                            return self.err(format!(
                                "unknown function `{word}`; known: {}",
                                FUNCTIONS.join(", ")
                            ));
                        };
                        self.bump();
                        self.enter()?;
                        let mut args = Vec::new();
                        if self.peek() != &Tok::RParen {
                            loop {
                                args.push(self.expr()?);
                                if self.peek() == &Tok::Comma {
                                    self.bump();
                                    continue;
                                }
                                break;
                            }
                        }
                        if self.bump() != Tok::RParen {
                            self.pos -= 1;
                            return self.err("expected `,` or `)` in the argument list");
                        }
                        self.depth -= 1;
                        if args.len() < min || args.len() > max {
                            let want = if min == max {
                                format!("{min}")
                            } else {
                                format!("{min} or {max}")
                            };
                            return self.err(format!(
                                "`{word}` takes {want} argument(s), got {}",
                                args.len()
                            ));
                        }
                        return Ok(Expr::Call(func, args));
                    }
                    self.pos -= 1;
                    self.err(format!(
                        "unknown name `{word}`; variables are written `vars.{word}`"
                    ))
                }
            },
            Tok::End => {
                self.pos -= 1;
                self.err("expression ends too early")
            }
            other => {
                self.pos -= 1;
                self.err(format!("unexpected {}", describe(&other)))
            }
        }
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(n) => format!("number {n}"),
        Tok::Str(_) => "text".into(),
        Tok::Ident(w) => format!("`{w}`"),
        Tok::Dot => "`.`".into(),
        Tok::Comma => "`,`".into(),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::Op(o) => format!("`{o}`"),
        Tok::End => "end".into(),
    }
}

/// Parses an expression.
pub fn parse(src: &str) -> Result<Expr, ExprError> {
    if src.len() > MAX_SOURCE_LEN {
        return Err(ExprError::Syntax {
            column: 1,
            message: format!("expression is longer than {MAX_SOURCE_LEN} characters"),
        });
    }
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let e = p.expr()?;
    if p.peek() != &Tok::End {
        let what = describe(p.peek());
        return p.err(format!("unexpected {what} after the end of the expression"));
    }
    Ok(e)
}

// ---------------------------------------------------------------- evaluation

/// What an expression can read.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Session variables.
    pub vars: &'a Vars,
    /// Contact fields.
    pub contact: &'a Vars,
    /// Deployment settings, looked up in order (runtime overrides first, flow defaults last).
    pub env: [&'a BTreeMap<String, String>; 2],
    /// The step's time (for `today()`).
    pub now: OffsetDateTime,
    /// Seed for `reference(..)`: differs per session and per step.
    pub seed: u64,
}

impl Context<'_> {
    /// Reads a path; a missing variable reads as null.
    pub fn lookup(&self, root: Root, name: &str) -> Value {
        match root {
            Root::Vars => self.vars.get(name).cloned().unwrap_or_default(),
            Root::Contact => self.contact.get(name).cloned().unwrap_or_default(),
            Root::Env => self
                .env
                .iter()
                .find_map(|m| m.get(name))
                .map_or(Value::Null, |s| Value::Text(s.clone())),
        }
    }
}

/// Evaluates a parsed expression.
pub fn eval(expr: &Expr, ctx: &Context<'_>) -> Result<Value, ExprError> {
    match expr {
        Expr::Lit(v) => Ok(v.clone()),
        Expr::Path(root, name) => Ok(ctx.lookup(*root, name)),
        Expr::Not(e) => match eval(e, ctx)? {
            Value::Bool(b) => Ok(Value::Bool(!b)),
            other => eval_err(format!(
                "`not` needs true or false, got {}",
                other.type_name()
            )),
        },
        Expr::Neg(e) => match eval(e, ctx)? {
            Value::Number(n) => Ok(Value::Number(-n)),
            Value::Money(m) => Ok(Value::Money(Money(-m.0))),
            other => eval_err(format!("cannot negate {}", other.type_name())),
        },
        Expr::Binary(BinOp::And, a, b) => match eval(a, ctx)? {
            Value::Bool(false) => Ok(Value::Bool(false)),
            Value::Bool(true) => as_bool(eval(b, ctx)?, "and"),
            other => eval_err(format!(
                "`and` needs true or false, got {}",
                other.type_name()
            )),
        },
        Expr::Binary(BinOp::Or, a, b) => match eval(a, ctx)? {
            Value::Bool(true) => Ok(Value::Bool(true)),
            Value::Bool(false) => as_bool(eval(b, ctx)?, "or"),
            other => eval_err(format!(
                "`or` needs true or false, got {}",
                other.type_name()
            )),
        },
        Expr::Binary(op, a, b) => binary(*op, eval(a, ctx)?, eval(b, ctx)?),
        Expr::Call(Func::If, args) => match args.as_slice() {
            [cond, then, otherwise] => match eval(cond, ctx)? {
                Value::Bool(true) => eval(then, ctx),
                Value::Bool(false) => eval(otherwise, ctx),
                other => eval_err(format!(
                    "if needs true or false as its condition, got {}",
                    other.type_name()
                )),
            },
            _ => eval_err("if takes 3 arguments"),
        },
        Expr::Call(f, args) => {
            let mut vals = Vec::with_capacity(args.len());
            for a in args {
                vals.push(eval(a, ctx)?);
            }
            call(*f, vals, ctx)
        }
    }
}

/// Parses and evaluates in one go.
pub fn eval_str(src: &str, ctx: &Context<'_>) -> Result<Value, ExprError> {
    eval(&parse(src)?, ctx)
}

fn as_bool(v: Value, op: &str) -> Result<Value, ExprError> {
    match v {
        Value::Bool(_) => Ok(v),
        other => eval_err(format!(
            "`{op}` needs true or false, got {}",
            other.type_name()
        )),
    }
}

fn num(x: f64) -> Result<Value, ExprError> {
    Value::number(x).ok_or_else(|| ExprError::Eval("the result is not a finite number".into()))
}

fn money(cents: Option<i64>) -> Result<Value, ExprError> {
    match cents {
        Some(c) if c.abs() <= Money::MAX_CENTS => Ok(Value::Money(Money(c))),
        _ => eval_err("the amount is out of range"),
    }
}

fn money_of(x: f64) -> Result<Value, ExprError> {
    Money::from_f64(x)
        .map(Value::Money)
        .ok_or_else(|| ExprError::Eval("the amount is out of range".into()))
}

fn text(s: String) -> Result<Value, ExprError> {
    if s.len() > MAX_TEXT_LEN {
        return eval_err(format!("text longer than {MAX_TEXT_LEN} bytes"));
    }
    Ok(Value::Text(s))
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.partial_cmp(y),
        (Value::Money(x), Value::Money(y)) => Some(x.cmp(y)),
        (Value::Money(x), Value::Number(y)) => x.as_f64().partial_cmp(y),
        (Value::Number(x), Value::Money(y)) => x.partial_cmp(&y.as_f64()),
        (Value::Text(x), Value::Text(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn binary(op: BinOp, a: Value, b: Value) -> Result<Value, ExprError> {
    use Value::{Money as M, Number as N, Text as T};
    match op {
        BinOp::Eq => Ok(Value::Bool(equal(&a, &b))),
        BinOp::Ne => Ok(Value::Bool(!equal(&a, &b))),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            let Some(ord) = compare(&a, &b) else {
                return eval_err(format!(
                    "cannot compare {} with {}",
                    a.type_name(),
                    b.type_name()
                ));
            };
            Ok(Value::Bool(match op {
                BinOp::Lt => ord.is_lt(),
                BinOp::Le => ord.is_le(),
                BinOp::Gt => ord.is_gt(),
                _ => ord.is_ge(),
            }))
        }
        BinOp::Add => match (a, b) {
            (N(x), N(y)) => num(x + y),
            (M(x), M(y)) => money(x.0.checked_add(y.0)),
            (M(x), N(y)) | (N(y), M(x)) => {
                money(Money::from_f64(y).and_then(|y| x.0.checked_add(y.0)))
            }
            (T(x), y) => text(format!("{x}{y}")),
            (x, T(y)) => text(format!("{x}{y}")),
            (x, y) => eval_err(format!(
                "cannot add {} and {}",
                x.type_name(),
                y.type_name()
            )),
        },
        BinOp::Sub => match (a, b) {
            (N(x), N(y)) => num(x - y),
            (M(x), M(y)) => money(x.0.checked_sub(y.0)),
            (M(x), N(y)) => money(Money::from_f64(y).and_then(|y| x.0.checked_sub(y.0))),
            (N(x), M(y)) => money(Money::from_f64(x).and_then(|x| x.0.checked_sub(y.0))),
            (x, y) => eval_err(format!(
                "cannot subtract {} from {}",
                y.type_name(),
                x.type_name()
            )),
        },
        BinOp::Mul => match (a, b) {
            (N(x), N(y)) => num(x * y),
            (M(x), N(y)) | (N(y), M(x)) => money_of(x.as_f64() * y),
            (x, y) => eval_err(format!(
                "cannot multiply {} by {}",
                x.type_name(),
                y.type_name()
            )),
        },
        BinOp::Div | BinOp::Rem => {
            let zero = matches!(b, N(y) if y == 0.0) || matches!(b, M(Money(0)));
            if zero {
                return eval_err("division by zero");
            }
            match (op, a, b) {
                (BinOp::Div, N(x), N(y)) => num(x / y),
                (BinOp::Div, M(x), N(y)) => money_of(x.as_f64() / y),
                (BinOp::Div, M(x), M(y)) => num(x.as_f64() / y.as_f64()),
                (BinOp::Rem, N(x), N(y)) => num(x % y),
                (BinOp::Rem, M(x), M(y)) => money(Some(x.0 % y.0)),
                (_, x, y) => eval_err(format!(
                    "cannot divide {} by {}",
                    x.type_name(),
                    y.type_name()
                )),
            }
        }
        BinOp::And | BinOp::Or => eval_err("internal: logical operator evaluated eagerly"),
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Money(_), Value::Number(_)) | (Value::Number(_), Value::Money(_)) => {
            compare(a, b).is_some_and(|o| o.is_eq())
        }
        _ => a == b,
    }
}

fn call(f: Func, mut args: Vec<Value>, ctx: &Context<'_>) -> Result<Value, ExprError> {
    let second = if args.len() > 1 { args.pop() } else { None };
    let first = if args.is_empty() {
        Value::Null
    } else {
        args.swap_remove(0)
    };
    match (f, first, second) {
        (Func::Len, Value::Text(s), _) => num(s.chars().count() as f64),
        (Func::Len, Value::List(l), _) => num(l.len() as f64),
        (Func::Len, Value::Null, _) => num(0.0),
        (Func::Upper, Value::Text(s), _) => Ok(Value::Text(s.to_uppercase())),
        (Func::Lower, Value::Text(s), _) => Ok(Value::Text(s.to_lowercase())),
        (Func::Trim, Value::Text(s), _) => Ok(Value::Text(s.trim().to_string())),
        (Func::Contains, Value::Text(s), Some(part)) => Ok(Value::Bool(
            s.to_lowercase().contains(&part.to_string().to_lowercase()),
        )),
        (Func::Contains, Value::List(l), Some(item)) => {
            Ok(Value::Bool(l.iter().any(|x| equal(x, &item))))
        }
        (Func::Contains, Value::Null, Some(_)) => Ok(Value::Bool(false)),
        (Func::StartsWith, Value::Text(s), Some(p)) => Ok(Value::Bool(
            s.to_lowercase().starts_with(&p.to_string().to_lowercase()),
        )),
        (Func::Round, x, places) => {
            let places = match places {
                None => 0.0,
                Some(Value::Number(p)) if (0.0..=6.0).contains(&p) => p.trunc(),
                Some(other) => {
                    return eval_err(format!(
                        "round's places must be a number from 0 to 6, got {other}"
                    ));
                }
            };
            match x {
                Value::Number(n) => {
                    let k = 10f64.powi(places as i32);
                    num((n * k).round() / k)
                }
                Value::Money(m) if places == 0.0 => {
                    money(Some((m.0 as f64 / 100.0).round() as i64 * 100))
                }
                Value::Money(m) => Ok(Value::Money(m)),
                other => eval_err(format!("cannot round {}", other.type_name())),
            }
        }
        (Func::Money, Value::Number(n), _) => money_of(n),
        (Func::Money, Value::Money(m), _) => Ok(Value::Money(m)),
        (Func::Money, Value::Text(s), _) => match Money::parse(&s) {
            Some(m) => Ok(Value::Money(m)),
            None => eval_err(format!("`{s}` is not an amount")),
        },
        (Func::Number, Value::Number(n), _) => Ok(Value::Number(n)),
        (Func::Number, Value::Money(m), _) => num(m.as_f64()),
        (Func::Number, Value::Text(s), _) => match s.trim().parse::<f64>() {
            Ok(n) => num(n),
            Err(_) => eval_err(format!("`{s}` is not a number")),
        },
        (Func::Text, x, _) => text(x.to_string()),
        (Func::Min | Func::Max, a, Some(b)) => match compare(&a, &b) {
            Some(ord) => Ok(if (f == Func::Min) == ord.is_le() {
                a
            } else {
                b
            }),
            None => eval_err(format!(
                "cannot compare {} with {}",
                a.type_name(),
                b.type_name()
            )),
        },
        (Func::Push, list, Some(item)) => {
            let mut l = match list {
                Value::List(l) => l,
                Value::Null => Vec::new(),
                other => return eval_err(format!("push needs a list, got {}", other.type_name())),
            };
            if l.len() >= MAX_LIST_LEN {
                return eval_err(format!("lists hold at most {MAX_LIST_LEN} items"));
            }
            l.push(item);
            Ok(Value::List(l))
        }
        (Func::Join, Value::List(l), Some(sep)) => {
            let sep = sep.to_string();
            text(
                l.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(&sep),
            )
        }
        (Func::Join, Value::Null, Some(_)) => Ok(Value::Text(String::new())),
        (Func::Today, _, _) => Ok(Value::Text(iso_date(ctx.now.date()))),
        (Func::DaysUntil, Value::Text(s), _) => match parse_iso_date(&s) {
            Some(d) => num((d - ctx.now.date()).whole_days() as f64),
            None => eval_err(format!("`{s}` is not a date (YYYY-MM-DD)")),
        },
        (Func::Reference, prefix, _) => Ok(Value::Text(reference(&prefix.to_string(), ctx.seed))),
        (f, a, b) => {
            let got = match b {
                Some(b) => format!("{} and {}", a.type_name(), b.type_name()),
                None => a.type_name().to_string(),
            };
            eval_err(format!(
                "{} cannot take {got}",
                format!("{f:?}").to_lowercase()
            ))
        }
    }
}

/// `YYYY-MM-DD`.
pub fn iso_date(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Parses `YYYY-MM-DD`.
pub fn parse_iso_date(s: &str) -> Option<time::Date> {
    let mut parts = s.trim().splitn(3, '-');
    let y: i32 = parts.next()?.parse().ok()?;
    let m: u8 = parts.next()?.parse().ok()?;
    let d: u8 = parts.next()?.parse().ok()?;
    time::Date::from_calendar_date(y, time::Month::try_from(m).ok()?, d).ok()
}

/// A reference number like `LN-7K3Q9D2A`: the prefix and 8 characters from an alphabet
/// without look-alikes (no 0/O, 1/I/L), derived from `seed`.
pub fn reference(prefix: &str, seed: u64) -> String {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut code = String::with_capacity(prefix.len() + 9);
    let prefix: String = prefix
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(8)
        .collect::<String>()
        .to_uppercase();
    if !prefix.is_empty() {
        code.push_str(&prefix);
        code.push('-');
    }
    for _ in 0..8 {
        // splitmix64: cheap, well mixed, deterministic.
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        code.push(ALPHABET[(z % ALPHABET.len() as u64) as usize] as char);
    }
    code
}

impl fmt::Display for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Root::Vars => "vars",
            Root::Contact => "contact",
            Root::Env => "env",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn run(src: &str) -> Result<Value, ExprError> {
        let mut vars = Vars::new();
        vars.insert("amount".into(), Value::Money(Money(500_000)));
        vars.insert("term".into(), Value::Number(12.0));
        vars.insert("name".into(), Value::Text("Thandi".into()));
        vars.insert(
            "cart".into(),
            Value::List(vec![Value::Text("Beans".into())]),
        );
        let mut contact = Vars::new();
        contact.insert("name".into(), Value::Text("Thandi Nkosi".into()));
        let env = BTreeMap::from([("base_url".to_string(), "http://x".to_string())]);
        let empty = BTreeMap::new();
        let ctx = Context {
            vars: &vars,
            contact: &contact,
            env: [&empty, &env],
            now: datetime!(2025-03-10 09:00 UTC),
            seed: 7,
        };
        eval_str(src, &ctx)
    }

    #[test]
    fn expressions_evaluate_as_documented() {
        use Value::*;
        let cases: Vec<(&str, Value, &str)> = vec![
            ("1 + 2 * 3", Number(7.0), "precedence"),
            ("(1 + 2) * 3", Number(9.0), "parentheses"),
            ("10 % 4", Number(2.0), "remainder"),
            ("-2 - -3", Number(1.0), "unary minus"),
            (
                "vars.amount / vars.term",
                Money(super::Money(41_667)),
                "money divided rounds to the cent",
            ),
            (
                "vars.amount * 0.1",
                Money(super::Money(50_000)),
                "money times a number",
            ),
            (
                "money('0.10') + money('0.20')",
                Money(super::Money(30)),
                "no float noise",
            ),
            (
                "text(money('0.10') + money('0.20'))",
                Text("0.30".into()),
                "shown exactly",
            ),
            (
                "vars.amount >= 5000",
                Bool(true),
                "money compares with numbers",
            ),
            (
                "vars.amount == 5000",
                Bool(true),
                "money equals a number of the same value",
            ),
            ("vars.term > 6 and vars.term <= 24", Bool(true), "and"),
            (
                "vars.term < 6 or not (vars.term == 12)",
                Bool(false),
                "or / not",
            ),
            ("vars.missing == null", Bool(true), "missing reads as null"),
            (
                "'Hi ' + vars.name + '!'",
                Text("Hi Thandi!".into()),
                "concatenation",
            ),
            (
                "'n=' + vars.term",
                Text("n=12".into()),
                "numbers concatenate plainly",
            ),
            ("upper(vars.name)", Text("THANDI".into()), "upper"),
            ("lower('ABC')", Text("abc".into()), "lower"),
            ("len(contact.name)", Number(12.0), "len counts characters"),
            (
                "contains(contact.name, 'nkosi')",
                Bool(true),
                "contains ignores case",
            ),
            ("contains(vars.cart, 'Beans')", Bool(true), "list contains"),
            ("round(2.345, 2)", Number(2.35), "round with places"),
            ("round(2.5)", Number(3.0), "round half away from zero"),
            ("len(push(vars.cart, 'Tea'))", Number(2.0), "push"),
            (
                "join(push(vars.cart, 'Tea'), '; ')",
                Text("Beans; Tea".into()),
                "join",
            ),
            (
                "today()",
                Text("2025-03-10".into()),
                "today uses the step's time",
            ),
            ("days_until('2025-03-17')", Number(7.0), "days until"),
            ("env.base_url + '/x'", Text("http://x/x".into()), "env"),
            ("max(vars.term, 24)", Number(24.0), "max"),
            (
                "min(money('5'), money('3'))",
                Money(super::Money(300)),
                "min of money",
            ),
            ("number('12') + 1", Number(13.0), "number()"),
            (
                "1 != 2 && true || false",
                Bool(true),
                "symbol forms of and/or",
            ),
            (
                "if(vars.term > 6, 'long', 1 / 0)",
                Text("long".into()),
                "if evaluates only the chosen branch",
            ),
        ];
        for (src, expected, why) in cases {
            assert_eq!(run(src), Ok(expected), "{src}: {why}");
        }
    }

    #[test]
    fn bad_expressions_are_errors_not_panics() {
        let cases = [
            ("1 +", "ends too early"),
            ("amount > 5", "unknown name"),
            ("vars.", "expected a name"),
            ("foo(1)", "unknown function"),
            ("len(1, 2)", "takes 1"),
            ("1 = 2", "use `==`"),
            ("'open", "not closed"),
            ("1 < 2 < 3", "do not chain"),
            ("vars.a.b", "two parts"),
            ("(1", "expected `)`"),
            ("1 2", "after the end"),
            ("1 / 0", "division by zero"),
            ("vars.name * 2", "cannot multiply"),
            ("not 1", "true or false"),
            ("vars.term and true", "true or false"),
            ("vars.name < 3", "cannot compare"),
            ("money('abc')", "not an amount"),
            ("money('1') * 1000000000000000000", "out of range"),
        ];
        for (src, needle) in cases {
            let err = run(src).expect_err(src).to_string();
            assert!(
                err.contains(needle),
                "{src}: expected `{needle}` in `{err}`"
            );
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}1{}", "(".repeat(100), ")".repeat(100));
        assert!(parse(&deep).unwrap_err().to_string().contains("deeper"));
        let negs = format!("{}1", "-".repeat(100));
        assert!(parse(&negs).is_err());
        let nots = format!("{}true", "not ".repeat(100));
        assert!(parse(&nots).is_err());
        assert!(parse(&"1+".repeat(1500)).is_err(), "too long");
    }

    #[test]
    fn references_are_deterministic_and_readable() {
        let a = reference("ln", 42);
        assert_eq!(a, reference("ln", 42));
        assert_ne!(a, reference("ln", 43));
        assert!(a.starts_with("LN-") && a.len() == 11, "{a}");
        assert!(!a[3..].contains(['0', 'O', '1', 'I', 'L']), "{a}");
    }
}
