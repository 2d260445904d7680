pub mod legacy {}
