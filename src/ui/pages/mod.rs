//! The web pages, one module each: its handler(s), the data it reads and
//! its view (a plain view model rendered by maud, so each can be rendered
//! from known data in tests). Adding a page is a module here, a route in
//! [`super::endpoint`] and, when it has a tab, a `super::layout::Page`.

pub mod activity;
pub mod advice;
pub mod compare;
pub mod database;
pub mod db_time;
pub mod explain;
#[cfg(feature = "postgres")]
pub mod growth;
pub mod login;
pub mod overview;
pub mod plan_changes;
pub mod queries;
