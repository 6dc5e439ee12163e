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
pub mod ssr {
    use axum::http::{header, HeaderMap, HeaderValue};
    use chrono::Utc;
    use leptos::prelude::*;

    use super::Admin;
    use crate::server_fns::NOT_SIGNED_IN;

    /// Name of the dashboard session cookie.
    pub const COOKIE: &str = "sessions_admin";

    /// The dashboard session token the request's cookie carries.
    pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| {
                let (name, value) = c.trim().split_once('=')?;
                (name == COOKIE).then(|| value.to_owned())
            })
    }

    /// Sets (or, with `None`, clears) the session cookie on the response.
    pub fn set_cookie(token: Option<&str>) {
        let value = match token {
            Some(t) => format!("{COOKIE}={t}; HttpOnly; SameSite=Strict; Path=/"),
            None => format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
        };
        if let (Some(response), Ok(v)) = (
            use_context::<leptos_axum::ResponseOptions>(),
            HeaderValue::from_str(&value),
        ) {
            response.append_header(header::SET_COOKIE, v);
        }
    }

    /// The signed-in administrator and their cookie's token, if the cookie names a live session.
    pub async fn current() -> Result<Option<(Admin, String)>, ServerFnError> {
        let headers: HeaderMap = leptos_axum::extract().await?;
        let Some(token) = cookie_token(&headers) else {
            return Ok(None);
        };
        let store = super::super::ssr::state()?.store;
        let session = store
            .validate(api::ADMIN_REALM, &token, true, Utc::now())
            .map_err(super::super::ssr::shown)?;
        Ok(session.map(|s| {
            (
                Admin {
                    username: s.subject_id,
                    sid: s.sid,
                },
                token,
            )
        }))
    }

    /// The signed-in administrator, or the error every protected server function answers.
    pub async fn require_admin() -> Result<Admin, ServerFnError> {
        current()
            .await?
            .map(|(a, _)| a)
            .ok_or_else(|| super::super::ssr::fail(401, NOT_SIGNED_IN))
    }

    /// Client details worth recording on the dashboard session.
    pub fn client_details(headers: &HeaderMap) -> (Option<String>, Option<String>) {
        let text = |name: header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(255).collect::<String>())
        };
        let ip = text(header::HeaderName::from_static("x-forwarded-for"))
            .and_then(|v| v.split(',').next().map(|s| s.trim().to_owned()));
        (ip, text(header::USER_AGENT))
    }
}

/// Who is signed in, if anyone.
#[server]
pub async fn current_admin() -> Result<Option<Admin>, ServerFnError> {
    Ok(ssr::current().await?.map(|(a, _)| a))
}

/// Signs in with a username and password, then goes to the sessions page.
#[server]
pub async fn sign_in(username: String, password: String) -> Result<(), ServerFnError> {
    use super::ssr::{blocking, state};
    use sessions::NewSession;
    let st = state()?;
    let admins = st.admins.clone();
    let user = username.clone();
    if !blocking(move || admins.verify(&user, &password)).await? {
        return Err(super::ssr::fail(401, "Wrong username or password."));
    }
    let headers: axum::http::HeaderMap = leptos_axum::extract().await?;
    let (ip, user_agent) = ssr::client_details(&headers);
    let new = NewSession {
        subject_id: username.clone(),
        display_name: Some(format!("Administrator {username}")),
        ip,
        user_agent,
        ..Default::default()
    };
    let store = st.store.clone();
    let created =
        blocking(move || store.create_session(api::ADMIN_REALM, &new, chrono::Utc::now())).await?;
    ssr::set_cookie(Some(&created.token));
    leptos_axum::redirect("/");
    Ok(())
}

/// Ends the administrator's dashboard session.
#[server]
pub async fn sign_out() -> Result<(), ServerFnError> {
    use super::ssr::{blocking, state};
    if let Some((_, token)) = ssr::current().await? {
        let store = state()?.store;
        blocking(move || store.logout(api::ADMIN_REALM, &token, chrono::Utc::now())).await?;
    }
    ssr::set_cookie(None);
    leptos_axum::redirect("/login");
    Ok(())
}
