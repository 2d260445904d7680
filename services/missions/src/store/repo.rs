//! (being built; see DESIGN.md)
