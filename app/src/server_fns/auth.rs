//! Administrator sign-in: a dashboard session is a session of the reserved admin realm, carried
//! in an HttpOnly, SameSite=Strict cookie.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use sessions::{AdminRole, Permission};

use crate::error::AppError;

/// The signed-in administrator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Admin {
    pub username: String,
    /// The administrator's own dashboard session, which the dashboard refuses to end.
    pub sid: String,
    /// What they may do; the dashboard shows only that (the service enforces it).
    pub role: AdminRole,
}

impl Admin {
    /// Whether the administrator's role grants `permission`.
    pub fn may(&self, permission: Permission) -> bool {
        self.role.may(permission)
    }
}

#[cfg(feature = "ssr")]
impl Admin {
    /// The administrator as the service's actor.
    pub fn actor(&self) -> service::Actor {
        service::Actor::Admin {
            username: self.username.clone(),
            sid: self.sid.clone(),
            role: self.role,
        }
    }
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use axum::http::{header, HeaderMap, HeaderValue};
    use cookie::{Cookie, SameSite};
    use leptos::prelude::*;
    use service::Actor;

    use super::Admin;
    use crate::error::AppError;
    use crate::server_fns::ssr::{failed, state};

    /// How the dashboard session cookie is sent.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct CookiePolicy {
        /// `Secure` with the `__Host-` prefix: the browser sends it only over https, only to
        /// this host. Off only for plain-http use on a workstation.
        pub secure: bool,
    }

    impl CookiePolicy {
        /// The cookie's name.
        pub fn name(self) -> &'static str {
            if self.secure {
                service::admins::SECURE_SESSION_COOKIE
            } else {
                service::admins::PLAIN_SESSION_COOKIE
            }
        }

        /// The `Set-Cookie` value carrying `token`, or clearing the cookie.
        pub fn set_cookie(self, token: Option<&str>) -> String {
            let mut cookie = Cookie::build((self.name(), token.unwrap_or_default()))
                .http_only(true)
                .same_site(SameSite::Strict)
                .path("/")
                .secure(self.secure);
            if token.is_none() {
                cookie = cookie.max_age(cookie::time::Duration::ZERO);
            }
            cookie.to_string()
        }

        /// The dashboard session token the request's cookie carries.
        pub fn token(self, headers: &HeaderMap) -> Option<String> {
            headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(Cookie::split_parse)
                .filter_map(Result::ok)
                .find(|c| c.name() == self.name())
                .map(|c| c.value().to_owned())
        }
    }

    /// Sets (or, with `None`, clears) the session cookie on the response.
    pub fn set_cookie(policy: CookiePolicy, token: Option<&str>) {
        if let (Some(response), Ok(v)) = (
            use_context::<leptos_axum::ResponseOptions>(),
            HeaderValue::from_str(&policy.set_cookie(token)),
        ) {
            response.append_header(header::SET_COOKIE, v);
        }
    }

    /// The signed-in administrator and their cookie's token, if the cookie names a live
    /// session of an enabled administrator.
    pub async fn current() -> Result<Option<(Admin, String)>, AppError> {
        let headers: HeaderMap = leptos_axum::extract().await.map_err(failed)?;
        let st = state()?;
        let Some(token) = st.cookie.token(&headers) else {
            return Ok(None);
        };
        let actor = st
            .service
            .dashboard_admin(&token, true)
            .await
            .map_err(failed)?;
        Ok(match actor {
            Some(Actor::Admin {
                username,
                sid,
                role,
            }) => Some((
                Admin {
                    username,
                    sid,
                    role,
                },
                token,
            )),
            _ => None,
        })
    }

    /// The signed-in administrator, or the error every protected server function answers.
    pub async fn require_admin() -> Result<Admin, AppError> {
        current()
            .await?
            .map(|(a, _)| a)
            .ok_or_else(|| failed(AppError::NotSignedIn))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_cookie_is_read_among_others_and_written_with_its_attributes() {
            let policy = CookiePolicy { secure: true };
            let mut headers = HeaderMap::new();
            headers.insert(
                header::COOKIE,
                HeaderValue::from_static("a=1; __Host-sessions_admin=tok=en; b=2"),
            );
            assert_eq!(policy.token(&headers).as_deref(), Some("tok=en"));
            assert_eq!(CookiePolicy { secure: false }.token(&headers), None);
            let set = policy.set_cookie(Some("t"));
            assert!(set.starts_with("__Host-sessions_admin=t;"), "{set}");
            for part in ["HttpOnly", "SameSite=Strict", "Path=/", "; Secure"] {
                assert!(set.contains(part), "{set}");
            }
            let cleared = CookiePolicy { secure: false }.set_cookie(None);
            assert!(cleared.starts_with("sessions_admin=;"), "{cleared}");
            assert!(cleared.contains("Max-Age=0") && !cleared.contains("Secure"));
        }
    }
}

/// Who is signed in, if anyone.
#[server]
pub async fn current_admin() -> Result<Option<Admin>, AppError> {
    Ok(ssr::current().await?.map(|(a, _)| a))
}

/// Signs in with a username and password, then goes to `next` (a path of this site, else the
/// sessions page). Failed attempts are throttled per user name and per client address.
#[server(endpoint = "sign_in")]
pub async fn sign_in(
    username: String,
    password: String,
    next: Option<String>,
) -> Result<(), AppError> {
    use super::ssr::{failed, state};
    use service::admins::sign_in::SignInError;
    let st = state()?;
    let headers: axum::http::HeaderMap = leptos_axum::extract().await.map_err(failed)?;
    let user_agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(255).collect::<String>());
    let client = service::request::current().and_then(|c| c.client);
    match st
        .service
        .sign_ins()
        .sign_in(&username, &password, client, user_agent)
        .await
    {
        Ok(created) => {
            ssr::set_cookie(st.cookie, Some(&created.token));
            leptos_axum::redirect(crate::routes::return_path(next.as_deref()).unwrap_or("/"));
            Ok(())
        }
        Err(e) => {
            if let (SignInError::Throttled { retry_after }, Some(response)) =
                (&e, use_context::<leptos_axum::ResponseOptions>())
            {
                if let Ok(v) =
                    axum::http::HeaderValue::from_str(&retry_after.as_secs().max(1).to_string())
                {
                    response.insert_header(axum::http::header::RETRY_AFTER, v);
                }
            }
            Err(failed(e))
        }
    }
}

/// Ends the administrator's dashboard session.
#[server(endpoint = "sign_out")]
pub async fn sign_out() -> Result<(), AppError> {
    use super::ssr::{failed, state};
    let st = state()?;
    if let Some((admin, token)) = ssr::current().await? {
        st.service
            .sign_ins()
            .sign_out(&admin.username, token)
            .await
            .map_err(failed)?;
    }
    ssr::set_cookie(st.cookie, None);
    leptos_axum::redirect("/login");
    Ok(())
}
