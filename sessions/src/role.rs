//! What a dashboard administrator may do: the roles, the permissions and which role grants
//! which (plain types, stored with the administrator and used by the dashboard to show only what
//! the role permits, so they also compile for WASM). The service enforces them.

use serde::{Deserialize, Serialize};

/// What a dashboard administrator may do, from least to most: each role may do everything the
/// roles before it may.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
#[serde(rename_all = "lowercase")]
pub enum AdminRole {
    /// Reads everything administrators may see; changes nothing.
    Viewer,
    /// A viewer who may also revoke: end sessions, revoke grants, retry deliveries.
    Operator,
    /// Everything, administrators, API keys and realm and client settings included.
    #[default]
    Admin,
}

impl AdminRole {
    /// Every role, from least to most.
    pub const ALL: [AdminRole; 3] = [AdminRole::Viewer, AdminRole::Operator, AdminRole::Admin];

    /// The role's name as stored and shown: `viewer`, `operator` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminRole::Viewer => "viewer",
            AdminRole::Operator => "operator",
            AdminRole::Admin => "admin",
        }
    }

    /// The role a name names, if any.
    pub fn parse(name: &str) -> Option<AdminRole> {
        AdminRole::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for AdminRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an action needs.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    /// See sessions, clients, deliveries and the audit log.
    Read,
    /// End sessions, revoke grants, retry deliveries.
    Operate,
    /// Manage administrators, API keys, signing keys, realm and client settings.
    Administer,
}

impl Permission {
    /// The least role granting the permission (every role above it grants it too).
    pub fn least_role(self) -> AdminRole {
        match self {
            Permission::Read => AdminRole::Viewer,
            Permission::Operate => AdminRole::Operator,
            Permission::Administer => AdminRole::Admin,
        }
    }
}

impl AdminRole {
    /// Whether the role grants `permission`.
    pub fn may(self, permission: Permission) -> bool {
        self >= permission.least_role()
    }
}
