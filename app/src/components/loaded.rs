//! Where a page's data appears: the previous content, dimmed and inert, while new data loads, and
//! the one error boundary that shows every server-function error.

use leptos::prelude::*;

use crate::error::AppError;
use crate::routes::LoginParams;

/// Shows `children` (views of `Result<_, AppError>`) once loaded. While newer data loads, the
/// content on screen cannot be acted on: it belongs to the previous parameters.
#[component]
pub fn Loaded(
    /// What the page says while loading the first time.
    loading: &'static str,
    children: ChildrenFn,
) -> impl IntoView {
    let pending = RwSignal::new(false);
    view! {
        <div class="loaded" aria-busy=move || pending.get().to_string() inert=move || pending.get()>
            <Transition fallback=move || view! { <p class="notice">{loading}</p> } set_pending=pending>
                <ErrorBoundary fallback=|errors| view! { <Failure errors/> }>
                    {children()}
                </ErrorBoundary>
            </Transition>
        </div>
    }
}

/// The errors of a page's data, as the administrator reads them.
#[component]
fn Failure(errors: ArcRwSignal<Errors>) -> impl IntoView {
    let location = leptos_router::hooks::use_location();
    move || {
        errors
            .read()
            .iter()
            .map(|(_, e)| match e.downcast_ref::<AppError>() {
                Some(AppError::NotSignedIn) => {
                    let sign_in = LoginParams::href_back_to(
                        &location.pathname.get_untracked(),
                        &location.search.get_untracked(),
                    );
                    view! {
                        <p class="notice" role="alert">
                            "You are not signed in. " <a href=sign_in>"Sign in"</a> " to go on."
                        </p>
                    }
                    .into_any()
                }
                _ => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
            })
            .collect_view()
    }
}
