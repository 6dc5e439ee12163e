//! Administrator sign-in: a dashboard session is a session of the reserved admin realm, carried
//! in an HttpOnly, SameSite=Strict cookie.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The signed-in administrator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Admin {
    pub username: String,
    /// The administrator's own dashboard session, which the dashboard refuses to revoke.
    pub sid: String,
}

#[cfg(feature = "ssr")]
impl Admin {
    /// The administrator as the service's actor.
    pub fn actor(&self) -> service::Actor {
        service::Actor::Admin {
            username: self.username.clone(),
            sid: self.sid.clone(),
        }
    }
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use axum::http::{header, HeaderMap, HeaderValue};
    use leptos::prelude::*;
    use service::Actor;

    use super::Admin;
    use crate::server_fns::NOT_SIGNED_IN;

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
                "__Host-sessions_admin"
            } else {
                "sessions_admin"
            }
        }

        /// The `Set-Cookie` value carrying `token`, or clearing the cookie.
        pub fn set_cookie(self, token: Option<&str>) -> String {
            let secure = if self.secure { "; Secure" } else { "" };
            match token {
                Some(t) => format!(
                    "{}={t}; HttpOnly; SameSite=Strict; Path=/{secure}",
                    self.name()
                ),
                None => format!(
                    "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}",
                    self.name()
                ),
            }
        }

        /// The dashboard session token the request's cookie carries.
        pub fn token(self, headers: &HeaderMap) -> Option<String> {
            headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .find_map(|c| {
                    let (name, value) = c.trim().split_once('=')?;
                    (name == self.name()).then(|| value.to_owned())
                })
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
    pub async fn current() -> Result<Option<(Admin, String)>, ServerFnError> {
        use super::super::ssr::{shown, state};
        let headers: HeaderMap = leptos_axum::extract().await?;
        let st = state()?;
        let Some(token) = st.cookie.token(&headers) else {
            return Ok(None);
        };
        let actor = st
            .service
            .dashboard_admin(&token, true)
            .await
            .map_err(shown)?;
        Ok(match actor {
            Some(Actor::Admin { username, sid }) => Some((Admin { username, sid }, token)),
            _ => None,
        })
    }

    /// The signed-in administrator, or the error every protected server function answers.
    pub async fn require_admin() -> Result<Admin, ServerFnError> {
        current()
            .await?
            .map(|(a, _)| a)
            .ok_or_else(|| super::super::ssr::fail(401, NOT_SIGNED_IN))
    }
}

/// Who is signed in, if anyone.
#[server]
pub async fn current_admin() -> Result<Option<Admin>, ServerFnError> {
    Ok(ssr::current().await?.map(|(a, _)| a))
}

/// Signs in with a username and password, then goes to the sessions page. Failed attempts are
/// throttled per user name and per client address.
#[server(endpoint = "sign_in")]
pub async fn sign_in(username: String, password: String) -> Result<(), ServerFnError> {
    use super::ssr::{fail, shown, state};
    use service::admins::sign_in::SignInError;
    let st = state()?;
    let headers: axum::http::HeaderMap = leptos_axum::extract().await?;
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
            leptos_axum::redirect("/");
            Ok(())
        }
        Err(SignInError::Store(e)) => Err(shown(e)),
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
            Err(fail(e.status(), e))
        }
    }
}

/// Ends the administrator's dashboard session.
#[server(endpoint = "sign_out")]
pub async fn sign_out() -> Result<(), ServerFnError> {
    use super::ssr::{shown, state};
    let st = state()?;
    if let Some((admin, token)) = ssr::current().await? {
        st.service
            .sign_ins()
            .sign_out(&admin.username, token)
            .await
            .map_err(shown)?;
    }
    ssr::set_cookie(st.cookie, None);
    leptos_axum::redirect("/login");
    Ok(())
}
