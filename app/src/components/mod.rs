//! The pieces pages are made of.

pub mod header;
pub mod live_banner;
pub mod pager;
pub mod revoke_dialog;
pub mod session_table;
