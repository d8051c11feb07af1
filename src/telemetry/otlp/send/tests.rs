//! The senders against receivers on loopback.
