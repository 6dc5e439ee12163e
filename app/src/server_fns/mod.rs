//! Server functions: the dashboard's only way to the session service.

pub mod sessions;

#[cfg(feature = "ssr")]
mod ssr {
    use leptos::prelude::*;
    use sessions::store::SessionStore;
    use std::sync::Arc;

    use crate::state::AppState;

    /// The store, from the context the server provides.
    pub fn store() -> Result<Arc<dyn SessionStore>, ServerFnError> {
        use_context::<AppState>()
            .map(|s| s.store)
            .ok_or_else(|| ServerFnError::new("the server provided no session store"))
    }

    /// A session-service error as the message the dashboard shows.
    pub fn shown(e: sessions::SessionError) -> ServerFnError {
        ServerFnError::new(e.to_string())
    }
}
