//! dlc facade
