//! The realm picker: choosing a realm switches the page to it at once, URL included.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use sessions::Realm;

use crate::format::thousands;

/// A `<select name="realm">` (so the form around it works before hydration) that navigates to
/// `href(realm)` as soon as a realm is chosen.
#[component]
pub fn RealmPicker(
    realms: Vec<Realm>,
    /// The realm on screen.
    current: String,
    /// The link to the page in another realm.
    href: Callback<String, String>,
    /// Show each realm's session count.
    #[prop(optional)]
    counts: bool,
) -> impl IntoView {
    let navigate = use_navigate();
    let options = realms
        .into_iter()
        .map(|r| {
            let label = if counts {
                format!("{} ({})", r.name, thousands(r.session_count))
            } else {
                r.name.clone()
            };
            let selected = r.name == current;
            view! { <option value=r.name selected=selected>{label}</option> }
        })
        .collect_view();
    view! {
        <label>"Realm"
            <select name="realm" on:change=move |ev| {
                navigate(&href.run(event_target_value(&ev)), Default::default());
            }>{options}</select>
        </label>
    }
}
