//! Staff users and their roles.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{TenantId, Timestamp, UserId};

/// What a staff member may do. Ordered: an admin can do everything a supervisor can, and a
/// supervisor everything an agent can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Answers conversations.
    Agent,
    /// Watches queues and agents, reassigns conversations.
    Supervisor,
    /// Configures the tenant: users, channels, flows, retention.
    Admin,
}

impl Role {
    /// The stable lowercase name used in storage, the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    /// Whether this role includes the permissions of `other`.
    pub fn includes(self, other: Role) -> bool {
        self >= other
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "agent" => Ok(Role::Agent),
            "supervisor" => Ok(Role::Supervisor),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role `{other}`: use one of admin, supervisor, agent"
            )),
        }
    }
}

/// A syntactically valid, lower-cased e-mail address (the login name of a staff user).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Parses an address: one `@`, a non-empty local part, a domain with a dot, no spaces,
    /// at most 254 characters. Deliverability is not checked.
    pub fn parse(input: &str) -> Result<Self, String> {
        let s = input.trim().to_ascii_lowercase();
        let valid = s.len() <= 254
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            && match s.split_once('@') {
                Some((local, domain)) => {
                    !local.is_empty()
                        && !domain.contains('@')
                        && domain.contains('.')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                }
                None => false,
            };
        if valid {
            Ok(Self(s))
        } else {
            Err(format!(
                "`{}` is not a valid e-mail address",
                input.chars().take(80).collect::<String>()
            ))
        }
    }

    /// The address as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Email::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A staff member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// The business this user works for.
    pub tenant_id: TenantId,
    /// Login name.
    pub email: Email,
    /// Name shown to colleagues and, for agents, to customers.
    pub name: String,
    /// Permissions.
    pub role: Role,
    /// When the account was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Timestamp,
}

/// What is needed to create a user. The password arrives already hashed (argon2id, PHC string).
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The business.
    pub tenant_id: TenantId,
    /// Login name.
    pub email: Email,
    /// Display name.
    pub name: String,
    /// Permissions.
    pub role: Role,
    /// argon2id PHC string.
    pub password_hash: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_parsing_table() {
        let cases = [
            ("Ann@Example.com", true, "mixed case is lower-cased"),
            ("ann@example", false, "domain needs a dot"),
            ("@example.com", false, "empty local part"),
            ("ann example@x.com", false, "space"),
            ("a@b@c.com", false, "two @"),
            ("ann@.com", false, "domain starts with a dot"),
        ];
        for (input, ok, why) in cases {
            assert_eq!(Email::parse(input).is_ok(), ok, "{input}: {why}");
        }
        assert_eq!(
            Email::parse("Ann@Example.com").unwrap().as_str(),
            "ann@example.com"
        );
    }

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(Role::Admin.includes(Role::Agent));
        assert!(Role::Supervisor.includes(Role::Agent));
        assert!(!Role::Agent.includes(Role::Supervisor));
        assert_eq!("ADMIN".parse::<Role>().unwrap(), Role::Admin);
        assert!("boss".parse::<Role>().is_err());
    }
}
