//! The pieces pages are made of.

pub mod header;
pub mod pager;
pub mod session_table;
