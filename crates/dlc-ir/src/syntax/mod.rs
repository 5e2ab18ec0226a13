//! The `.ir` text language (filled in by the parser work).
