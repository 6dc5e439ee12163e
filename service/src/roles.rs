//! Who may do what: an administrator's [`Role`] (or an API key's scopes) grants
//! [`Permission`]s (which role grants which is [`Role::may`]), and every service method that
//! changes something, or shows what only admins may see, checks its actor with
//! [`Actor::require`] first. The JSON API and the dashboard's
//! server functions both go through these methods, so neither relies on its caller's manners.

use sessions::{Result, SessionError};

use crate::Actor;

pub use sessions::{AdminRole as Role, Permission};

/// What a permission allows, for messages.
fn verb(permission: Permission) -> &'static str {
    match permission {
        Permission::Read => "read",
        Permission::Operate => "revoke sessions, grants or deliveries",
        Permission::Administer => "change administrators, API keys or settings",
    }
}

impl Actor {
    /// The role the actor acts with: an administrator's own; an API key's from its scopes
    /// (`sessions:admin` is admin, `sessions:read` viewer, `sessions:issue` alone none); the
    /// server and the command line may do everything.
    pub fn role(&self) -> Option<Role> {
        match self {
            Actor::Admin { role, .. } => Some(*role),
            Actor::ApiKey { role, .. } => *role,
            Actor::Server | Actor::Cli => Some(Role::Admin),
        }
    }

    /// Whether the actor may do what `permission` covers.
    pub fn may(&self, permission: Permission) -> bool {
        self.role().is_some_and(|r| r.may(permission))
    }

    /// Refuses, with [`SessionError::Forbidden`] (HTTP 403), an actor without `permission`.
    pub fn require(&self, permission: Permission) -> Result<()> {
        if self.may(permission) {
            return Ok(());
        }
        let (needed, verb) = (permission.least_role(), verb(permission));
        Err(SessionError::Forbidden(match self {
            Actor::ApiKey { name, .. } => {
                format!("API key '{name}' may not {verb}: that needs scope sessions:admin")
            }
            _ => format!(
                "{} has role {}; only role {needed} or above may {verb}",
                self.audit_name(),
                self.role().map_or("none", Role::as_str)
            ),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin(role: Role) -> Actor {
        Actor::Admin {
            username: "someone".into(),
            sid: "00000000-0000-0000-0000-000000000000".into(),
            role,
        }
    }

    #[test]
    fn each_role_grants_exactly_its_column_of_the_matrix() {
        use Permission::*;
        let matrix = [
            (Role::Viewer, [true, false, false]),
            (Role::Operator, [true, true, false]),
            (Role::Admin, [true, true, true]),
        ];
        for (role, allowed) in matrix {
            for (permission, allowed) in [Read, Operate, Administer].into_iter().zip(allowed) {
                assert_eq!(
                    admin(role).may(permission),
                    allowed,
                    "{role} {permission:?}"
                );
                assert_eq!(admin(role).require(permission).is_ok(), allowed);
            }
        }
    }

    #[test]
    fn a_refusal_is_a_403_that_names_the_role_needed() {
        let e = admin(Role::Viewer)
            .require(Permission::Operate)
            .unwrap_err();
        assert_eq!((e.status(), e.code()), (403, "forbidden"));
        assert!(e.to_string().contains("role viewer"), "{e}");
        assert!(e.to_string().contains("operator"), "{e}");
    }

    #[test]
    fn api_keys_act_with_the_role_of_their_scopes_and_the_server_with_every_one() {
        let key = |role| Actor::ApiKey {
            name: "k".into(),
            role,
        };
        assert!(key(Some(Role::Admin)).may(Permission::Administer));
        assert!(key(Some(Role::Viewer)).may(Permission::Read));
        assert!(!key(Some(Role::Viewer)).may(Permission::Operate));
        assert!(
            !key(None).may(Permission::Read),
            "an issuing key reads nothing"
        );
        let e = key(None).require(Permission::Operate).unwrap_err();
        assert!(e.to_string().contains("API key 'k'"), "{e}");
        for actor in [Actor::Server, Actor::Cli] {
            assert!(actor.may(Permission::Administer));
        }
    }
}
