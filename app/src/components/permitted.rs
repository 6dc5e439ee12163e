//! Controls only for those who may use them.

use leptos::prelude::*;
use sessions::Permission;

use crate::SignedIn;

/// Its children, shown only to a signed-in administrator whose role grants `permission`. The
/// server refuses the rest anyway; this keeps controls away from those who cannot use them.
#[component]
pub fn Permitted(permission: Permission, children: ChildrenFn) -> impl IntoView {
    let SignedIn(admin) = expect_context();
    view! {
        <Transition fallback=|| ()>
            {move || {
                let children = children.clone();
                Suspend::new(async move {
                    let permitted = matches!(&admin.await.1, Ok(Some(a)) if a.may(permission));
                    permitted.then(|| children())
                })
            }}
        </Transition>
    }
}
