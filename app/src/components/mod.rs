//! The pieces pages are made of.

pub mod charts;
pub mod copy_id;
pub mod device;
pub mod end_dialog;
pub mod ended_table;
pub mod header;
pub mod live_banner;
pub mod loaded;
pub mod network;
pub mod pager;
pub mod permitted;
pub mod realm_picker;
pub mod session_table;
