//! meshplan library
